package resolver

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// authServer is an authoritative test server on 127.0.0.x: it answers
// from the zone records it holds, with referrals for delegated names.
type authServer struct {
	ip    string
	zones []string // apexes served, canonical
	rrs   []dns.RR

	mu      sync.Mutex
	seen    []string // question names received, as sent
	mangle  func(req, resp *dns.Msg, udp bool)
	servers []*dns.Server
}

func (s *authServer) queries(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, q := range s.seen {
		if strings.EqualFold(q, name) {
			n++
		}
	}
	return n
}

// names returns the question names received so far, as sent.
func (s *authServer) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seen)
}

func (s *authServer) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	q := req.Question[0]
	s.mu.Lock()
	s.seen = append(s.seen, q.Name)
	mangle := s.mangle
	s.mu.Unlock()
	resp := new(dns.Msg)
	resp.SetReply(req)
	s.answer(resp, dns.CanonicalName(q.Name), q.Qtype)
	_, udp := w.RemoteAddr().(*net.UDPAddr)
	if mangle != nil {
		mangle(req, resp, udp)
	}
	w.WriteMsg(resp)
}

func (s *authServer) answer(resp *dns.Msg, name string, qtype uint16) {
	zone := ""
	for _, z := range s.zones {
		if dns.IsSubDomain(z, name) && len(z) > len(zone) {
			zone = z
		}
	}
	if zone == "" {
		resp.Rcode = dns.RcodeRefused
		return
	}
	// A delegation below the apex on the way to name: refer.
	for _, rr := range s.rrs {
		h := rr.Header()
		owner := dns.CanonicalName(h.Name)
		if h.Rrtype == dns.TypeNS && owner != zone && dns.IsSubDomain(zone, owner) && dns.IsSubDomain(owner, name) {
			for _, rr := range s.rrs {
				if rr.Header().Rrtype == dns.TypeNS && dns.CanonicalName(rr.Header().Name) == owner {
					resp.Ns = append(resp.Ns, rr)
					target := dns.CanonicalName(rr.(*dns.NS).Ns)
					for _, g := range s.rrs {
						if g.Header().Rrtype == dns.TypeA && dns.CanonicalName(g.Header().Name) == target {
							resp.Extra = append(resp.Extra, g)
						}
					}
				}
			}
			return
		}
	}
	resp.Authoritative = true
	exists := false
	for _, rr := range s.rrs {
		owner := dns.CanonicalName(rr.Header().Name)
		if dns.IsSubDomain(name, owner) {
			exists = true
		}
		if owner != name {
			continue
		}
		switch t := rr.Header().Rrtype; {
		case t == qtype:
			resp.Answer = append(resp.Answer, rr)
		case t == dns.TypeCNAME:
			resp.Answer = append(resp.Answer, rr)
			target := dns.CanonicalName(rr.(*dns.CNAME).Target)
			for _, rr := range s.rrs {
				if dns.CanonicalName(rr.Header().Name) == target && rr.Header().Rrtype == qtype {
					resp.Answer = append(resp.Answer, rr)
				}
			}
		}
	}
	if len(resp.Answer) > 0 {
		return
	}
	if !exists {
		resp.Rcode = dns.RcodeNameError
	}
	apex := strings.TrimPrefix(zone, ".")
	soa := fmt.Sprintf("%s 300 IN SOA ns.%s host.%s 1 3600 600 86400 120", zone, apex, apex)
	resp.Ns = append(resp.Ns, mustRR(soa))
}

func mustRR(s string) dns.RR {
	rr, err := dns.NewRR(s)
	if err != nil {
		panic(err)
	}
	return rr
}

// hierarchy is a root, two TLDs and authoritative servers on loopback,
// all on one port:
//
//	127.0.0.2  .              test. -> 127.0.0.3, alt. -> 127.0.0.4
//	127.0.0.3  test.          example.test. -> .5 (glue), glueless.test. ->
//	                          ns.hoster.alt. (no glue), bad.test. -> .7,
//	                          spoof.test. -> .8
//	127.0.0.4  alt.           hoster.alt. -> .6
//	127.0.0.5  example.test.
//	127.0.0.6  hoster.alt., glueless.test.
//	127.0.0.7  bad.test.      answers with the question lower-cased
//	127.0.0.8  spoof.test.    adds records about other zones
type hierarchy struct {
	port    int
	hints   string
	servers map[string]*authServer // by last octet: "2" ... "8"
}

var hierarchyZones = []struct {
	ip    string
	zones []string
	rrs   string
}{
	{"127.0.0.2", []string{"."}, `
test. 86400 IN NS ns.nic.test.
ns.nic.test. 86400 IN A 127.0.0.3
alt. 86400 IN NS ns.nic.alt.
ns.nic.alt. 86400 IN A 127.0.0.4`},
	{"127.0.0.3", []string{"test."}, `
example.test. 3600 IN NS ns1.example.test.
ns1.example.test. 3600 IN A 127.0.0.5
glueless.test. 3600 IN NS ns.hoster.alt.
bad.test. 3600 IN NS ns.bad.test.
ns.bad.test. 3600 IN A 127.0.0.7
spoof.test. 3600 IN NS ns.spoof.test.
ns.spoof.test. 3600 IN A 127.0.0.8`},
	{"127.0.0.4", []string{"alt."}, `
hoster.alt. 3600 IN NS ns.hoster.alt.
ns.hoster.alt. 3600 IN A 127.0.0.6`},
	{"127.0.0.5", []string{"example.test."}, `
www.example.test. 300 IN A 192.0.2.1
ttl.example.test. 60 IN A 192.0.2.60
alias.example.test. 300 IN CNAME www.hoster.alt.
inzone.example.test. 300 IN CNAME www.example.test.
deep.a.b.example.test. 300 IN A 192.0.2.4
big.example.test. 300 IN TXT "this answer is truncated over udp by the test server"`},
	{"127.0.0.6", []string{"hoster.alt.", "glueless.test."}, `
ns.hoster.alt. 3600 IN A 127.0.0.6
www.hoster.alt. 300 IN A 192.0.2.2
www.glueless.test. 300 IN A 192.0.2.3`},
	{"127.0.0.7", []string{"bad.test."}, `
www.bad.test. 300 IN A 192.0.2.7`},
	{"127.0.0.8", []string{"spoof.test."}, `
www.spoof.test. 300 IN A 192.0.2.8`},
}

// mangles make some servers misbehave.
var mangles = map[string]func(req, resp *dns.Msg, udp bool){
	// Over UDP, big.example.test. comes back truncated.
	"127.0.0.5": func(req, resp *dns.Msg, udp bool) {
		if udp && strings.EqualFold(req.Question[0].Name, "big.example.test.") {
			resp.Answer = nil
			resp.Truncated = true
		}
	},
	// bad.test.'s server ignores 0x20.
	"127.0.0.7": func(req, resp *dns.Msg, udp bool) {
		resp.Question[0].Name = strings.ToLower(resp.Question[0].Name)
	},
	// spoof.test.'s server tries to poison other zones.
	"127.0.0.8": func(req, resp *dns.Msg, udp bool) {
		resp.Answer = append(resp.Answer, mustRR("www.example.test. 300 IN A 6.6.6.6"))
		resp.Ns = append(resp.Ns, mustRR("example.test. 300 IN NS ns.evil.alt."))
		resp.Extra = append(resp.Extra, mustRR("ns1.example.test. 300 IN A 6.6.6.6"),
			mustRR("ns.evil.alt. 300 IN A 6.6.6.6"))
	},
}

// newHierarchy starts the test hierarchy and writes its root hints file.
func newHierarchy(tb testing.TB) *hierarchy {
	tb.Helper()
	for attempt := 0; ; attempt++ {
		h, err := startHierarchy(tb)
		if err == nil {
			return h
		}
		if attempt == 5 {
			tb.Fatalf("starting test hierarchy: %v", err)
		}
	}
}

func startHierarchy(tb testing.TB) (*hierarchy, error) {
	h := &hierarchy{servers: make(map[string]*authServer)}
	var started []*authServer
	cleanup := func() {
		for _, s := range started {
			s.stop()
		}
	}
	for _, z := range hierarchyZones {
		s := &authServer{ip: z.ip, zones: z.zones}
		for _, line := range strings.Split(strings.TrimSpace(z.rrs), "\n") {
			s.rrs = append(s.rrs, mustRR(line))
		}
		s.mangle = mangles[z.ip]
		if err := s.start(h.port); err != nil {
			cleanup()
			return nil, err
		}
		if h.port == 0 {
			h.port = s.servers[0].PacketConn.LocalAddr().(*net.UDPAddr).Port
		}
		started = append(started, s)
		h.servers[z.ip[len("127.0.0."):]] = s
	}
	tb.Cleanup(cleanup)
	h.hints = filepath.Join(tb.TempDir(), "named.root")
	hints := ".  3600000  NS  a.root.test.\na.root.test.  3600000  A  127.0.0.2\n"
	if err := os.WriteFile(h.hints, []byte(hints), 0o600); err != nil {
		tb.Fatal(err)
	}
	return h, nil
}

func (s *authServer) start(port int) error {
	pc, err := net.ListenPacket("udp", net.JoinHostPort(s.ip, fmt.Sprint(port)))
	if err != nil {
		return err
	}
	port = pc.LocalAddr().(*net.UDPAddr).Port
	ln, err := net.Listen("tcp", net.JoinHostPort(s.ip, fmt.Sprint(port)))
	if err != nil {
		pc.Close()
		return err
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: s}, {Listener: ln, Handler: s}} {
		ready := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(ready) }
		go srv.ActivateAndServe()
		<-ready
		s.servers = append(s.servers, srv)
	}
	return nil
}

func (s *authServer) stop() {
	for _, srv := range s.servers {
		srv.Shutdown()
	}
}

// stop shuts every server of the hierarchy down.
func (h *hierarchy) stop() {
	for _, s := range h.servers {
		s.stop()
	}
}

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeWriter is a dns.ResponseWriter that records what is written.
type fakeWriter struct {
	remote net.Addr
	msgs   []*dns.Msg
	closed bool
}

func (w *fakeWriter) LocalAddr() net.Addr       { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (w *fakeWriter) RemoteAddr() net.Addr      { return w.remote }
func (w *fakeWriter) WriteMsg(m *dns.Msg) error { w.msgs = append(w.msgs, m); return nil }
func (w *fakeWriter) Write(b []byte) (int, error) {
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return 0, err
	}
	w.msgs = append(w.msgs, m)
	return len(b), nil
}
func (w *fakeWriter) Close() error        { w.closed = true; return nil }
func (w *fakeWriter) TsigStatus() error   { return nil }
func (w *fakeWriter) TsigTimersOnly(bool) {}
func (w *fakeWriter) Hijack()             {}
func (w *fakeWriter) Network() string     { return "udp" }
