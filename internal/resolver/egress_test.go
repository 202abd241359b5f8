package resolver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"veil/internal/dnstest"
	"veil/internal/netguard"
)

// TestEgressGuardOnUpstreams: delegations whose name servers sit on
// addresses the egress guard refuses (metadata, private, the host's
// loopback, unique local, a peer's tunnel address) get no datagram and
// answer SERVFAIL, while the servers the operator's allow list opens
// keep resolving. The targets on loopback are real servers that count
// what reaches them; the others cannot be listened on without root, so
// for them the test checks the guard was asked and refused.
func TestEgressGuardOnUpstreams(t *testing.T) {
	const (
		root  = "127.0.0.2"
		tld   = "127.0.0.4"
		good  = "127.0.0.5"
		peer  = "127.0.0.65" // inside the pretend tunnel pool below
		other = "127.0.0.3"  // a loopback address the allow list leaves out
	)
	pool := netip.MustParsePrefix("127.0.0.64/27")
	targets := map[string]string{ // zone under test. -> its name server's address
		"meta":     "169.254.169.254",
		"private":  "10.0.0.1",
		"loopback": other,
		"ula":      "fd00::1",
		"peer":     peer,
		"host":     "127.0.0.1",
		"host6":    "::1",
	}
	tldRRs := "ok.test. 300 IN NS ns.ok.test.\nns.ok.test. 300 IN A " + good + "\n" +
		// A glueless delegation whose name server resolves to a refused address.
		"glueless.test. 300 IN NS ns.elsewhere.\n"
	for zone, addr := range targets {
		typ := "A"
		if netip.MustParseAddr(addr).Is6() {
			typ = "AAAA"
		}
		tldRRs += zone + ".test. 300 IN NS ns." + zone + ".test.\nns." + zone + ".test. 300 IN " + typ + " " + addr + "\n"
	}
	hosts := []dnstest.Host{
		{Addr: netip.MustParseAddr(root), Handler: dnstest.MustZone(
			"test. 300 IN NS ns.nic.test.\nns.nic.test. 300 IN A "+tld+"\nns.elsewhere. 300 IN A "+other, ".")},
		{Addr: netip.MustParseAddr(tld), Handler: dnstest.MustZone(tldRRs, "test.")},
		{Addr: netip.MustParseAddr(good), Handler: dnstest.MustZone("www.ok.test. 300 IN A 192.0.2.1", "ok.test.")},
	}
	// Every target that loopback lets us listen on answers as if it were
	// the zone's server, and counts what reaches it.
	var traps []*dnstest.Zone
	for _, addr := range []string{other, peer, "127.0.0.1", "::1"} {
		z := dnstest.MustZone("", ".")
		traps = append(traps, z)
		hosts = append(hosts, dnstest.Host{Addr: netip.MustParseAddr(addr), Handler: z})
	}
	h := dnstest.Start(t, hosts...)

	guard := netguard.Guard{
		// The operator opens the test's servers, and a range around the
		// tunnel pool, which stays refused.
		Allow: []netip.Prefix{netip.MustParsePrefix(root + "/32"), netip.MustParsePrefix(tld + "/32"),
			netip.MustParsePrefix(good + "/32"), netip.MustParsePrefix("127.0.0.64/26")},
		Deny: []netip.Prefix{pool},
	}
	var mu sync.Mutex
	var refused []netip.Addr
	egress := func(a netip.Addr) error {
		err := guard.Permit(a)
		if err != nil {
			mu.Lock()
			refused = append(refused, a)
			mu.Unlock()
		}
		return err
	}
	r, err := New(Config{RootHints: h.Hints, Port: h.Port, Egress: egress, Timeout: time.Second, DisableDNSSEC: true})
	if err != nil {
		t.Fatal(err)
	}

	m, err := r.Resolve(context.Background(), "www.ok.test.", dns.TypeA)
	if err != nil || !slices.Equal(answerData(m), []string{"192.0.2.1"}) {
		t.Fatalf("allowed servers: %v, %v", m, err)
	}
	for zone := range targets {
		t.Run(zone, func(t *testing.T) {
			if _, err := r.Resolve(context.Background(), "www."+zone+".test.", dns.TypeA); !errors.Is(err, ErrServFail) {
				t.Errorf("err = %v, want ErrServFail", err)
			}
		})
	}
	t.Run("glueless", func(t *testing.T) {
		if _, err := r.Resolve(context.Background(), "www.glueless.test.", dns.TypeA); !errors.Is(err, ErrServFail) {
			t.Errorf("err = %v, want ErrServFail", err)
		}
	})
	// A client gets SERVFAIL for it too.
	w := &fakeWriter{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}}
	req := new(dns.Msg).SetQuestion("www.meta.test.", dns.TypeA)
	r.ServeDNS(w, req)
	if len(w.msgs) != 1 || w.msgs[0].Rcode != dns.RcodeServerFailure {
		t.Errorf("client got %v, want SERVFAIL", w.msgs)
	}

	for i, z := range traps {
		if q := z.Queries(); len(q) > 0 {
			t.Errorf("trap %d received %d queries: %v", i, len(q), q)
		}
	}
	for _, addr := range targets {
		if !slices.Contains(refused, netip.MustParseAddr(addr)) {
			t.Errorf("the guard was never asked about %s", addr)
		}
	}
}
