package dnsleak

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"veil/internal/geo"
	"veil/internal/geo/geotest"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// startServer runs a leak server on a loopback port for the test.
func startServer(tb testing.TB, cfg Config) (*Server, string) {
	tb.Helper()
	if cfg.Zone == "" {
		cfg.Zone = "leak.test"
	}
	cfg.Addr = "127.0.0.1:0"
	s, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	addr, err := s.Start(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return s, addr.String()
}

func query(tb testing.TB, net_, addr, name string, qtype uint16, ecs netip.Prefix) *dns.Msg {
	tb.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	if ecs.IsValid() {
		m.SetEdns0(1232, false)
		fam := uint16(1)
		if ecs.Addr().Is6() {
			fam = 2
		}
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_SUBNET{
			Code: dns.EDNS0SUBNET, Family: fam, SourceNetmask: uint8(ecs.Bits()), Address: ecs.Addr().AsSlice(),
		})
	}
	c := &dns.Client{Net: net_, Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		tb.Fatalf("%s query %s: %v", net_, name, err)
	}
	return r
}

func TestGoClient(t *testing.T) {
	s, addr := startServer(t, Config{
		NSAddrs: []netip.Addr{netip.MustParseAddr("192.0.2.53")},
		IsOurResolver: func(ip netip.Addr) (string, bool) {
			return "se-sto-1", ip == netip.MustParseAddr("127.0.0.1")
		},
	})
	tt, err := s.NewTest()
	if err != nil {
		t.Fatal(err)
	}
	if len(tt.Names) != 6 {
		t.Fatalf("%d names", len(tt.Names))
	}
	// Mixed case, as resolvers using 0x20 randomisation send it.
	r := query(t, "udp", addr, strings.ToUpper(tt.Names[0]), dns.TypeA, netip.MustParsePrefix("198.51.100.0/24"))
	if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.53" {
		t.Errorf("udp answer: %v", r)
	}
	r = query(t, "tcp", addr, tt.Names[1], dns.TypeAAAA, netip.Prefix{})
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 || len(r.Ns) != 1 {
		t.Errorf("tcp AAAA answer (NODATA expected): %v", r)
	}
	res, err := s.Result(tt.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != NoLeak || len(res.Resolvers) != 1 {
		t.Fatalf("result %+v", res)
	}
	rv := res.Resolvers[0]
	if rv.IP != "127.0.0.1" || !rv.Ours || rv.Gateway != "se-sto-1" || rv.Queries != 2 || strings.Join(rv.ClientSubnets, ",") != "198.51.100.0/24" {
		t.Errorf("resolver %+v", rv)
	}
}

func TestZoneAnswers(t *testing.T) {
	_, addr := startServer(t, Config{Zone: "Leak.Test.", NS: []string{"ns1.leak.test"}, NSAddrs: []netip.Addr{netip.MustParseAddr("192.0.2.53")}})
	tests := []struct {
		name  string
		qtype uint16
		rcode int
		ans   int
	}{
		{"leak.test", dns.TypeSOA, dns.RcodeSuccess, 1},
		{"leak.test", dns.TypeNS, dns.RcodeSuccess, 1},
		{"ns1.leak.test", dns.TypeA, dns.RcodeSuccess, 1},
		{"a.b.c.leak.test", dns.TypeA, dns.RcodeNameError, 0},
		// A test id is an empty non-terminal: NXDOMAIN would stop a
		// QNAME-minimising resolver before it asks for the test name.
		{"0123456789abcdef.leak.test", dns.TypeA, dns.RcodeSuccess, 0},
		{"example.com", dns.TypeA, dns.RcodeRefused, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+dns.TypeToString[tt.qtype], func(t *testing.T) {
			r := query(t, "udp", addr, tt.name, tt.qtype, netip.Prefix{})
			if r.Rcode != tt.rcode || len(r.Answer) != tt.ans {
				t.Errorf("rcode %s answers %d, want %s %d", dns.RcodeToString[r.Rcode], len(r.Answer), dns.RcodeToString[tt.rcode], tt.ans)
			}
		})
	}
}

func TestDig(t *testing.T) {
	dig, err := exec.LookPath("dig")
	if err != nil {
		t.Skip("dig is not installed (apt-get install bind9-dnsutils); the Go client test covers the server")
	}
	s, addr := startServer(t, Config{})
	host, port, _ := net.SplitHostPort(addr)
	tt, _ := s.NewTest()
	for _, proto := range []string{"+notcp", "+tcp"} {
		out, err := exec.Command(dig, "@"+host, "-p", port, proto, "+subnet=203.0.113.0/24", "+tries=1", "+time=5", tt.Names[0], "A").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "status: NOERROR") || !strings.Contains(string(out), " aa") {
			t.Fatalf("dig %s: %v\n%s", proto, err, out)
		}
	}
	res, err := s.Result(tt.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != Leak || len(res.Resolvers) != 1 || res.Resolvers[0].Queries != 2 || strings.Join(res.Resolvers[0].ClientSubnets, ",") != "203.0.113.0/24" {
		t.Errorf("after dig: %+v", res)
	}
}

func TestExpiry(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s, addr := startServer(t, Config{Clock: clock.Now, TTL: time.Hour}) // capped at MaxTTL
	tt, _ := s.NewTest()
	if want := clock.Now().Add(MaxTTL); !tt.ExpiresAt.Equal(want) {
		t.Errorf("expires %v, want %v", tt.ExpiresAt, want)
	}
	query(t, "udp", addr, tt.Names[0], dns.TypeA, netip.Prefix{})
	clock.Add(MaxTTL - time.Second)
	if _, err := s.Result(tt.ID); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	clock.Add(time.Second)
	if _, err := s.Result(tt.ID); err != ErrNotFound {
		t.Fatalf("after expiry: %v, want ErrNotFound", err)
	}
	// A late query for an expired test notes nothing.
	query(t, "udp", addr, tt.Names[1], dns.TypeA, netip.Prefix{})
	if n := s.Len(); n != 0 {
		t.Errorf("%d tests held after expiry", n)
	}
}

func TestMaxTests(t *testing.T) {
	s, _ := startServer(t, Config{MaxTests: 2})
	for i := range 3 {
		_, err := s.NewTest()
		if (i < 2) != (err == nil) {
			t.Errorf("test %d: %v", i, err)
		}
	}
}

func TestHTTPAndCheck(t *testing.T) {
	db, err := geo.Open(geotest.Write(t, geotest.Flat, geotest.Record{Prefix: "127.0.0.0/8", Country: "SE", City: "Stockholm", ASN: 64500, Org: "Veil Test AB"}))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, addr := startServer(t, Config{Geo: db})
	mux := http.NewServeMux()
	s.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resolve := func(ctx context.Context, name string) error {
		c := &dns.Client{Timeout: 5 * time.Second}
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), dns.TypeA)
		_, _, err := c.ExchangeContext(ctx, m, addr)
		return err
	}
	res, err := Check(context.Background(), srv.Client(), srv.URL, resolve)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != Leak || len(res.Resolvers) != 1 {
		t.Fatalf("check: %+v", res)
	}
	rv := res.Resolvers[0]
	if rv.Country != "Sweden" || rv.City != "Stockholm" || rv.ASN != "AS64500" || rv.ASNOrg != "Veil Test AB" || rv.Queries != 6 {
		t.Errorf("resolver %+v", rv)
	}

	for _, tc := range []struct {
		method, path string
		code         int
		body         string
	}{
		{"GET", "/api/v1/dnsleak/" + res.ID, 200, `"verdict":"leak"`},
		{"GET", "/api/v1/dnsleak/0000000000000000", 404, "expire"},
		{"GET", "/dnsleak", 200, "leak.test"},
		{"GET", "/api/v1/dnsleak", 405, ""},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(body), tc.body) {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, resp.StatusCode, body)
		}
	}

	// A fresh test with no queries says so.
	resp, err := srv.Client().Post(srv.URL+"/api/v1/dnsleak", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var fresh Test
	json.NewDecoder(resp.Body).Decode(&fresh)
	resp.Body.Close()
	if r, _ := s.Result(fresh.ID); r == nil || r.Verdict != NoQueries {
		t.Errorf("fresh test: %+v", r)
	}
}

func TestNewConfig(t *testing.T) {
	for _, zone := range []string{"", "bad..zone"} {
		if _, err := New(Config{Zone: zone}); err == nil {
			t.Errorf("New(%q) succeeded", zone)
		}
	}
}
