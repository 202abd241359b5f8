package harness

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"veil/internal/dnstest"
)

// DNS is a root, a TLD and an authoritative server on loopback addresses,
// all on one port, for the gateway's resolver to recurse through:
//
//	127.53.0.1  .        test. -> 127.53.0.2
//	127.53.0.2  test.    every zone of Zones -> its server
//	127.53.0.3  Zone     the names of Records (A)
//
// Delegations to extra servers (such as the DNS leak test's) sit in the
// TLD as well, with their own addresses.
type DNS struct {
	*dnstest.Hierarchy
	auth *dnstest.Zone
}

// DNSConfig describes the authoritative data.
type DNSConfig struct {
	// Zone is the authoritative zone under test., e.g. "veil-e2e.test".
	Zone string
	// Records maps names in Zone to IPv4 addresses.
	Records map[string]netip.Addr
	// Delegate maps more zones under test. to the address of their name
	// server, which the caller runs on Port.
	Delegate map[string]netip.Addr
}

// Reserved addresses of the hierarchy.
var (
	RootAddr = netip.MustParseAddr("127.53.0.1")
	TLDAddr  = netip.MustParseAddr("127.53.0.2")
	AuthAddr = netip.MustParseAddr("127.53.0.3")
)

// StartDNS starts the hierarchy; everything stops at cleanup. Every
// address of cfg.Delegate is checked to have Port free too.
func StartDNS(tb testing.TB, cfg DNSConfig) *DNS {
	tb.Helper()
	zone := dns.Fqdn(strings.ToLower(cfg.Zone))
	tld := []string{"test. 86400 IN NS ns.nic.test.", "ns.nic.test. 86400 IN A " + TLDAddr.String(),
		zone + " 3600 IN NS ns1." + zone, "ns1." + zone + " 3600 IN A " + AuthAddr.String()}
	var hosts []dnstest.Host
	for z, a := range cfg.Delegate {
		z = dns.Fqdn(strings.ToLower(z))
		tld = append(tld, z+" 3600 IN NS ns1."+z, "ns1."+z+" 3600 IN A "+a.String())
		hosts = append(hosts, dnstest.Host{Addr: a})
	}
	auth := []string{zone + " 3600 IN NS ns1." + zone, "ns1." + zone + " 3600 IN A " + AuthAddr.String()}
	for name, a := range cfg.Records {
		auth = append(auth, dns.Fqdn(name)+" 60 IN A "+a.String())
	}
	root := []string{". 86400 IN NS a.root.test.", "a.root.test. 86400 IN A " + RootAddr.String(),
		"test. 86400 IN NS ns.nic.test.", "ns.nic.test. 86400 IN A " + TLDAddr.String()}
	d := &DNS{auth: mustZone(tb, zone, auth)}
	hosts = append([]dnstest.Host{
		{Addr: RootAddr, Handler: mustZone(tb, ".", root)},
		{Addr: TLDAddr, Handler: mustZone(tb, "test.", tld)},
		{Addr: AuthAddr, Handler: d.auth},
	}, hosts...)
	d.Hierarchy = dnstest.Start(tb, hosts...)
	return d
}

func mustZone(tb testing.TB, apex string, rrs []string) *dnstest.Zone {
	z, err := dnstest.NewZone([]string{apex}, rrs)
	if err != nil {
		tb.Fatal(err)
	}
	return z
}

// AuthQueries returns the question names the authoritative server got,
// lower-cased (the resolver randomises case).
func (d *DNS) AuthQueries() []string {
	q := d.auth.Queries()
	for i := range q {
		q[i] = strings.ToLower(q[i])
	}
	return q
}
