package resolver

import (
	"context"
	"errors"
	"hash/maphash"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"veil/internal/netguard"
)

// loopbackEgress opens the tests' loopback servers, as --egress-allow
// 127.0.0.0/8 does.
var loopbackEgress = netguard.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}.Permit

// newTestResolver returns a resolver recursing through h.
func newTestResolver(tb testing.TB, h *hierarchy, cfg Config) *Resolver {
	tb.Helper()
	cfg.RootHints = h.Hints
	cfg.Port = h.Port
	if cfg.Egress == nil {
		cfg.Egress = loopbackEgress
	}
	if cfg.TrustAnchor == "" {
		cfg.DisableDNSSEC = true // the hierarchy's root is not signed
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = time.Second
	}
	r, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return r
}

// addrs returns the A and AAAA data of m's answer, and CNAME targets.
func answerData(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.CNAME:
			out = append(out, "cname:"+strings.ToLower(rr.Target))
		case *dns.TXT:
			out = append(out, "txt")
		}
	}
	return out
}

func TestRecursion(t *testing.T) {
	h := newHierarchy(t)
	r := newTestResolver(t, h, Config{})
	tests := []struct {
		name  string
		qname string
		qtype uint16
		rcode int
		want  []string
	}{
		{"delegation with glue", "www.example.test.", dns.TypeA, dns.RcodeSuccess, []string{"192.0.2.1"}},
		{"mixed case question", "WwW.ExAmPlE.TeSt.", dns.TypeA, dns.RcodeSuccess, []string{"192.0.2.1"}},
		{"empty non-terminals", "deep.a.b.example.test.", dns.TypeA, dns.RcodeSuccess, []string{"192.0.2.4"}},
		{"glueless out-of-bailiwick NS", "www.glueless.test.", dns.TypeA, dns.RcodeSuccess, []string{"192.0.2.3"}},
		{"CNAME across zones", "alias.example.test.", dns.TypeA, dns.RcodeSuccess, []string{"cname:www.hoster.alt.", "192.0.2.2"}},
		{"CNAME in zone", "inzone.example.test.", dns.TypeA, dns.RcodeSuccess, []string{"cname:www.example.test.", "192.0.2.1"}},
		{"NXDOMAIN", "nope.example.test.", dns.TypeA, dns.RcodeNameError, nil},
		{"NXDOMAIN at TLD", "nope.test.", dns.TypeA, dns.RcodeNameError, nil},
		{"NODATA", "www.example.test.", dns.TypeAAAA, dns.RcodeSuccess, nil},
		{"truncated falls back to TCP", "big.example.test.", dns.TypeTXT, dns.RcodeSuccess, []string{"txt"}},
		{"spoofing server gives only its own records", "www.spoof.test.", dns.TypeA, dns.RcodeSuccess, []string{"192.0.2.8"}},
		{"spoofed records were not cached", "www.example.test.", dns.TypeA, dns.RcodeSuccess, []string{"192.0.2.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := r.Resolve(context.Background(), tt.qname, tt.qtype)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if m.Rcode != tt.rcode {
				t.Errorf("rcode = %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tt.rcode])
			}
			if got := answerData(m); !slices.Equal(got, tt.want) {
				t.Errorf("answer = %v, want %v", got, tt.want)
			}
		})
	}
	// QNAME minimisation: the root and the TLD never saw the full name.
	if n := h.servers["2"].Count("www.example.test."); n != 0 {
		t.Errorf("root saw the full name %d times", n)
	}
	if n := h.servers["3"].Count("www.example.test."); n != 0 {
		t.Errorf("TLD saw the full name %d times", n)
	}
	if n := h.servers["2"].Count("test."); n == 0 {
		t.Errorf("root was not asked the minimised name")
	}
}

func TestCaseRandomisation(t *testing.T) {
	h := newHierarchy(t)
	r := newTestResolver(t, h, Config{})
	for _, name := range []string{"a.example.test.", "b.example.test.", "c.example.test."} {
		r.Resolve(context.Background(), name, dns.TypeA)
	}
	mixed := false
	for _, q := range h.servers["5"].Queries() {
		if q != strings.ToLower(q) {
			mixed = true
		}
	}
	if !mixed {
		t.Errorf("no upstream question used 0x20 case: %v", h.servers["5"].Queries())
	}
	// A server that does not echo the case is ignored.
	_, err := r.Resolve(context.Background(), "www.bad.test.", dns.TypeA)
	if !errors.Is(err, ErrServFail) {
		t.Errorf("resolving through a 0x20-breaking server: err = %v, want ErrServFail", err)
	}
	if h.servers["7"].Count("www.bad.test.") == 0 {
		t.Errorf("the 0x20-breaking server was never asked")
	}
}

func TestCache(t *testing.T) {
	h := newHierarchy(t)
	clock := newTestClock()
	r := newTestResolver(t, h, Config{Clock: clock.now})
	ctx := context.Background()
	auth := h.servers["5"]

	resolveTTL := func(name string) uint32 {
		t.Helper()
		m, err := r.Resolve(ctx, name, dns.TypeA)
		if err != nil {
			t.Fatalf("Resolve: %v", err)
		}
		if len(m.Answer) == 0 {
			return 0
		}
		return m.Answer[0].Header().Ttl
	}

	resolveTTL("ttl.example.test.")
	clock.advance(20 * time.Second)
	if ttl := resolveTTL("ttl.example.test."); ttl != 40 {
		t.Errorf("TTL after 20s = %d, want 40", ttl)
	}
	if n := auth.Count("ttl.example.test."); n != 1 {
		t.Errorf("upstream asked %d times within the TTL, want 1", n)
	}
	clock.advance(41 * time.Second)
	if ttl := resolveTTL("ttl.example.test."); ttl != 60 {
		t.Errorf("TTL after expiry = %d, want a fresh 60", ttl)
	}
	if n := auth.Count("ttl.example.test."); n != 2 {
		t.Errorf("upstream asked %d times after expiry, want 2", n)
	}

	// Negative caching: SOA TTL 300, minimum 120, so 120 s.
	for range 3 {
		resolveTTL("missing.example.test.")
	}
	if n := auth.Count("missing.example.test."); n != 1 {
		t.Errorf("NXDOMAIN asked upstream %d times, want 1", n)
	}
	clock.advance(121 * time.Second)
	resolveTTL("missing.example.test.")
	if n := auth.Count("missing.example.test."); n != 2 {
		t.Errorf("NXDOMAIN asked upstream %d times after negative TTL, want 2", n)
	}
}

func TestServeStale(t *testing.T) {
	h := newHierarchy(t)
	clock := newTestClock()
	r := newTestResolver(t, h, Config{Clock: clock.now, ServeStale: time.Hour, Timeout: 200 * time.Millisecond})
	ctx := context.Background()
	if _, err := r.Resolve(ctx, "ttl.example.test.", dns.TypeA); err != nil {
		t.Fatal(err)
	}
	h.Stop()
	clock.advance(10 * time.Minute)
	m, err := r.Resolve(ctx, "ttl.example.test.", dns.TypeA)
	if err != nil {
		t.Fatalf("Resolve with upstream down: %v", err)
	}
	if got := answerData(m); !slices.Equal(got, []string{"192.0.2.60"}) || m.Answer[0].Header().Ttl != staleTTL {
		t.Errorf("stale answer = %v, want 192.0.2.60 with TTL %d", m.Answer, staleTTL)
	}
	clock.advance(time.Hour)
	if _, err := r.Resolve(ctx, "ttl.example.test.", dns.TypeA); !errors.Is(err, ErrServFail) {
		t.Errorf("beyond the serve-stale bound: err = %v, want ErrServFail", err)
	}
}

func TestCacheBound(t *testing.T) {
	h := newHierarchy(t)
	r := newTestResolver(t, h, Config{CacheSize: 4})
	for _, n := range []string{"www", "ttl", "nope1", "nope2", "nope3", "deep.a.b"} {
		if _, err := r.Resolve(context.Background(), n+".example.test.", dns.TypeA); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.cache.len(); n > 4 {
		t.Errorf("cache holds %d entries, bound is 4", n)
	}
	m, err := r.Resolve(context.Background(), "www.example.test.", dns.TypeA)
	if err != nil || !slices.Equal(answerData(m), []string{"192.0.2.1"}) {
		t.Errorf("after eviction: %v, %v", m, err)
	}
}

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.SetEdns0(1232, false)
	return m
}

func udpFrom(ip string) net.Addr { return &net.UDPAddr{IP: net.ParseIP(ip), Port: 40000} }

func TestServeDNS(t *testing.T) {
	h := newHierarchy(t)
	r := newTestResolver(t, h, Config{
		Allow: func(a netip.Addr) bool { return a == netip.MustParseAddr("10.64.0.2") },
	})
	tests := []struct {
		name    string
		from    net.Addr
		req     *dns.Msg
		replied bool
		rcode   int
		want    []string
	}{
		{"peer", udpFrom("10.64.0.2"), query("www.example.test.", dns.TypeA), true, dns.RcodeSuccess, []string{"192.0.2.1"}},
		{"peer over TCP", &net.TCPAddr{IP: net.ParseIP("10.64.0.2"), Port: 1}, query("www.example.test.", dns.TypeA), true, dns.RcodeSuccess, []string{"192.0.2.1"}},
		{"other source dropped", udpFrom("192.0.2.99"), query("www.example.test.", dns.TypeA), false, 0, nil},
		{"loopback not allowed by this policy", udpFrom("127.0.0.1"), query("www.example.test.", dns.TypeA), false, 0, nil},
		{"ANY answered minimally", udpFrom("10.64.0.2"), query("example.test.", dns.TypeANY), true, dns.RcodeSuccess, nil},
		{"response dropped", udpFrom("10.64.0.2"), func() *dns.Msg { m := query("x.test.", dns.TypeA); m.Response = true; return m }(), false, 0, nil},
		{"two questions dropped", udpFrom("10.64.0.2"), func() *dns.Msg {
			m := query("x.test.", dns.TypeA)
			m.Question = append(m.Question, m.Question[0])
			return m
		}(), false, 0, nil},
		{"CHAOS refused", udpFrom("10.64.0.2"), func() *dns.Msg {
			m := query("version.bind.", dns.TypeTXT)
			m.Question[0].Qclass = dns.ClassCHAOS
			return m
		}(), true, dns.RcodeRefused, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &fakeWriter{remote: tt.from}
			r.ServeDNS(w, tt.req)
			if !tt.replied {
				if len(w.msgs) != 0 {
					t.Fatalf("got a reply, want none: %v", w.msgs[0])
				}
				return
			}
			if len(w.msgs) != 1 {
				t.Fatalf("got %d replies, want 1", len(w.msgs))
			}
			m := w.msgs[0]
			if m.Rcode != tt.rcode || m.Id != tt.req.Id || !m.RecursionAvailable {
				t.Errorf("rcode %s id %d ra %v", dns.RcodeToString[m.Rcode], m.Id, m.RecursionAvailable)
			}
			if got := answerData(m); !slices.Equal(got, tt.want) {
				t.Errorf("answer = %v, want %v", got, tt.want)
			}
			if tt.req.Question[0].Qtype == dns.TypeANY {
				if len(m.Answer) != 1 || m.Answer[0].Header().Rrtype != dns.TypeHINFO {
					t.Errorf("ANY answer = %v, want one HINFO (RFC 8482)", m.Answer)
				}
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	h := newHierarchy(t)
	clock := newTestClock()
	r := newTestResolver(t, h, Config{Clock: clock.now, RateLimit: 2}) // burst 4
	answered := func(from string) int {
		n := 0
		for range 6 {
			w := &fakeWriter{remote: udpFrom(from)}
			r.ServeDNS(w, query("www.example.test.", dns.TypeA))
			n += len(w.msgs)
		}
		return n
	}
	if n := answered("127.0.0.1"); n != 4 {
		t.Errorf("answered %d of 6 queries at once, want the burst of 4", n)
	}
	if n := answered("127.0.0.9"); n != 4 {
		t.Errorf("another client answered %d of 6, want its own burst of 4", n)
	}
	clock.advance(time.Second)
	if n := answered("127.0.0.1"); n != 2 {
		t.Errorf("after 1s answered %d, want 2 refilled", n)
	}
}

// TestRateLimitRotation checks that a key rotation forgets every bucket by
// giving the limiter a fresh table: the old one is dropped whole, not
// emptied entry by entry while every query waits on the lock.
func TestRateLimitRotation(t *testing.T) {
	clock := newTestClock()
	l := newLimiter(1, clock.now) // burst 2
	a := netip.MustParseAddr("127.0.0.1")
	for range 2 {
		if !l.allow(a) {
			t.Fatal("refused within the burst")
		}
	}
	if l.allow(a) {
		t.Fatal("allowed beyond the burst")
	}
	old, seed := l.buckets, l.seed
	a16 := a.As16()
	oldKey := maphash.Bytes(seed, a16[:])
	clock.advance(keyRotation)
	if !l.allow(a) {
		t.Error("after the key rotation the client's old bucket still counts")
	}
	if l.seed == seed {
		t.Error("the hash key did not rotate")
	}
	if len(l.buckets) != 1 {
		t.Errorf("after rotation the table holds %d buckets, want 1", len(l.buckets))
	}
	if old[oldKey] == nil {
		t.Error("the old table was emptied in place, want it replaced by a fresh map")
	}
}

func writeFile(tb testing.TB, dir, name, content string) string {
	tb.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

func TestBlocklists(t *testing.T) {
	h := newHierarchy(t)
	dir := t.TempDir()
	ads := writeFile(t, dir, "ads.hosts", "# hosts format\n127.0.0.1 localhost\n0.0.0.0 www.example.test other.test # ad server\n")
	trackers := writeFile(t, dir, "trackers.txt", "# domain list\nhoster.alt\n*.glueless.test\n")
	policies := map[netip.Addr][]string{
		netip.MustParseAddr("127.0.0.10"): {"ads"},
		netip.MustParseAddr("127.0.0.11"): {"trackers"},
		netip.MustParseAddr("127.0.0.12"): nil,
	}
	r := newTestResolver(t, h, Config{
		Blocklists:  map[string]string{"ads": ads, "trackers": trackers},
		BlockPolicy: func(a netip.Addr) []string { return policies[a] },
	})
	tests := []struct {
		client string
		qname  string
		rcode  int
	}{
		{"127.0.0.10", "www.example.test.", dns.RcodeNameError},
		{"127.0.0.10", "sub.www.example.test.", dns.RcodeNameError},
		{"127.0.0.10", "WWW.EXAMPLE.TEST.", dns.RcodeNameError},
		{"127.0.0.10", "www.hoster.alt.", dns.RcodeSuccess},
		{"127.0.0.10", "localhost.", dns.RcodeNameError}, // not blocked: the root says it does not exist
		{"127.0.0.11", "www.example.test.", dns.RcodeSuccess},
		{"127.0.0.11", "www.hoster.alt.", dns.RcodeNameError},
		{"127.0.0.11", "alias.example.test.", dns.RcodeNameError}, // CNAME into a blocked domain
		{"127.0.0.11", "www.glueless.test.", dns.RcodeNameError},
		{"127.0.0.12", "www.example.test.", dns.RcodeSuccess},
		{"127.0.0.12", "www.hoster.alt.", dns.RcodeSuccess},
	}
	for _, tt := range tests {
		t.Run(tt.client+" "+tt.qname, func(t *testing.T) {
			w := &fakeWriter{remote: udpFrom(tt.client)}
			r.ServeDNS(w, query(tt.qname, dns.TypeA))
			if len(w.msgs) != 1 {
				t.Fatalf("got %d replies", len(w.msgs))
			}
			if m := w.msgs[0]; m.Rcode != tt.rcode {
				t.Errorf("rcode = %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tt.rcode])
			} else if tt.rcode == dns.RcodeNameError && len(m.Answer) != 0 {
				t.Errorf("blocked answer carries records: %v", m.Answer)
			}
			// ServePacket's hit path, from the query's bytes, applies the
			// same lists (the answer is cached now).
			b, err := query(tt.qname, dns.TypeA).Pack()
			if err != nil {
				t.Fatal(err)
			}
			if out, _, ok := r.answerHit(nil, nil, b, netip.MustParseAddr(tt.client)); ok {
				m := new(dns.Msg)
				if err := m.Unpack(out); err != nil || m.Rcode != tt.rcode {
					t.Errorf("from the bytes: rcode %s (%v), want %s", dns.RcodeToString[m.Rcode], err, dns.RcodeToString[tt.rcode])
				}
			}
		})
	}
}

// TestRealServer runs the resolver behind miekg/dns servers with the
// guards, on UDP and TCP.
func TestRealServer(t *testing.T) {
	h := newHierarchy(t)
	var allowed atomic.Pointer[netip.Addr]
	lo := netip.MustParseAddr("127.0.0.1")
	allowed.Store(&lo)
	r := newTestResolver(t, h, Config{Allow: func(a netip.Addr) bool { return a == *allowed.Load() }})
	// One port for UDP and TCP; the UDP port the system picks may be in
	// use for TCP, so try a few.
	var pc net.PacketConn
	var ln net.Listener
	for try := 0; ln == nil; try++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err != nil {
			pc.Close()
			if try == 20 {
				t.Fatal(err)
			}
		}
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	for _, srv := range []*dns.Server{
		{PacketConn: r.PacketConn(pc), Handler: r, MsgAcceptFunc: r.AcceptMsg},
		{Listener: r.Listener(ln), Handler: r, MsgAcceptFunc: r.AcceptMsg},
	} {
		ready := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(ready) }
		go srv.ActivateAndServe()
		<-ready
		t.Cleanup(func() { srv.Shutdown() })
	}
	server := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for _, network := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: network, Timeout: 2 * time.Second}
		m, _, err := c.Exchange(query("alias.example.test.", dns.TypeA), server)
		if err != nil {
			t.Fatalf("%s exchange: %v", network, err)
		}
		if got := answerData(m); !slices.Equal(got, []string{"cname:www.hoster.alt.", "192.0.2.2"}) {
			t.Errorf("%s answer = %v", network, got)
		}
	}
	// From a source that is not allowed, TCP is closed at once and UDP
	// never answered.
	other := netip.MustParseAddr("127.0.0.250")
	allowed.Store(&other)
	tc := &dns.Client{Net: "tcp", Timeout: 2 * time.Second}
	if _, _, err := tc.Exchange(query("www.example.test.", dns.TypeA), server); err == nil {
		t.Errorf("TCP query from a refused source was answered")
	}
	uc := &dns.Client{Net: "udp", Timeout: 300 * time.Millisecond}
	if _, _, err := uc.Exchange(query("www.example.test.", dns.TypeA), server); err == nil {
		t.Errorf("UDP query from a refused source was answered")
	}
}
