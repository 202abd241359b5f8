package resolver

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"veil/internal/dnstest"
)

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
	*dnstest.Hierarchy
	servers map[string]*dnstest.Zone // by last octet: "2" ... "8"
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
	h := &hierarchy{servers: make(map[string]*dnstest.Zone)}
	var hosts []dnstest.Host
	for _, z := range hierarchyZones {
		zone := dnstest.MustZone(strings.TrimSpace(z.rrs), z.zones...)
		zone.Mangle = mangles[z.ip]
		h.servers[z.ip[len("127.0.0."):]] = zone
		hosts = append(hosts, dnstest.Host{Addr: netip.MustParseAddr(z.ip), Handler: zone})
	}
	h.Hierarchy = dnstest.Start(tb, hosts...)
	return h
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
