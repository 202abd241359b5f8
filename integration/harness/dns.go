package harness

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
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
	// Port is the one port every server listens on.
	Port int
	// Hints is a root hints file naming the root server.
	Hints string

	servers []*authServer
	auth    *authServer
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
	var extra []netip.Addr
	for z, a := range cfg.Delegate {
		z = dns.Fqdn(strings.ToLower(z))
		tld = append(tld, z+" 3600 IN NS ns1."+z, "ns1."+z+" 3600 IN A "+a.String())
		extra = append(extra, a)
	}
	auth := []string{zone + " 3600 IN NS ns1." + zone, "ns1." + zone + " 3600 IN A " + AuthAddr.String()}
	for name, a := range cfg.Records {
		auth = append(auth, dns.Fqdn(name)+" 60 IN A "+a.String())
	}
	specs := []struct {
		ip   netip.Addr
		zone string
		rrs  []string
	}{
		{RootAddr, ".", []string{". 86400 IN NS a.root.test.", "a.root.test. 86400 IN A " + RootAddr.String(),
			"test. 86400 IN NS ns.nic.test.", "ns.nic.test. 86400 IN A " + TLDAddr.String()}},
		{TLDAddr, "test.", tld},
		{AuthAddr, zone, auth},
	}
	for attempt := 0; ; attempt++ {
		d, err := func() (*DNS, error) {
			d := &DNS{}
			first := true
			for _, sp := range specs {
				s := &authServer{zone: sp.zone}
				for _, line := range sp.rrs {
					rr, err := dns.NewRR(line)
					if err != nil {
						return d, fmt.Errorf("%q: %w", line, err)
					}
					s.rrs = append(s.rrs, rr)
				}
				port := d.Port
				if first {
					port = 0
				}
				p, err := s.start(sp.ip, port)
				if err != nil {
					return d, err
				}
				d.servers = append(d.servers, s)
				d.Port, first = p, false
				if sp.ip == AuthAddr {
					d.auth = s
				}
			}
			for _, a := range extra {
				if err := portFree(a, d.Port); err != nil {
					return d, err
				}
			}
			return d, nil
		}()
		if err == nil {
			tb.Cleanup(d.stop)
			d.Hints = filepath.Join(tb.TempDir(), "root.hints")
			hints := ". 3600000 NS A.ROOT.TEST.\nA.ROOT.TEST. 3600000 A " + RootAddr.String() + "\n"
			if err := os.WriteFile(d.Hints, []byte(hints), 0o644); err != nil {
				tb.Fatal(err)
			}
			return d
		}
		d.stop()
		if attempt == 5 {
			tb.Fatalf("starting the DNS hierarchy: %v", err)
		}
	}
}

func portFree(a netip.Addr, port int) error {
	ap := netip.AddrPortFrom(a, uint16(port))
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return err
	}
	pc.Close()
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(ap))
	if err != nil {
		return err
	}
	return ln.Close()
}

func (d *DNS) stop() {
	for _, s := range d.servers {
		s.stop()
	}
}

// AuthQueries returns the question names the authoritative server got,
// lower-cased (the resolver randomises case).
func (d *DNS) AuthQueries() []string {
	d.auth.mu.Lock()
	defer d.auth.mu.Unlock()
	return slices.Clone(d.auth.seen)
}

// authServer answers from its records: a referral for names under a
// delegated child, else an authoritative answer, NODATA or NXDOMAIN.
type authServer struct {
	zone    string
	rrs     []dns.RR
	servers []*dns.Server

	mu   sync.Mutex
	seen []string
}

func (s *authServer) start(ip netip.Addr, port int) (int, error) {
	ap := netip.AddrPortFrom(ip, uint16(port))
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return 0, err
	}
	port = pc.LocalAddr().(*net.UDPAddr).Port
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))))
	if err != nil {
		pc.Close()
		return 0, err
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: s}, {Listener: ln, Handler: s}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		s.servers = append(s.servers, srv)
	}
	return port, nil
}

func (s *authServer) stop() {
	for _, srv := range s.servers {
		srv.Shutdown()
	}
	s.servers = nil
}

func (s *authServer) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	resp := new(dns.Msg)
	resp.SetReply(req)
	if len(req.Question) != 1 {
		resp.Rcode = dns.RcodeFormatError
		w.WriteMsg(resp)
		return
	}
	q := req.Question[0]
	name := dns.CanonicalName(q.Name)
	s.mu.Lock()
	s.seen = append(s.seen, name)
	s.mu.Unlock()
	s.answer(resp, name, q.Qtype)
	w.WriteMsg(resp)
}

func (s *authServer) answer(resp *dns.Msg, name string, qtype uint16) {
	if !dns.IsSubDomain(s.zone, name) {
		resp.Rcode = dns.RcodeRefused
		return
	}
	for _, rr := range s.rrs {
		owner := dns.CanonicalName(rr.Header().Name)
		if rr.Header().Rrtype != dns.TypeNS || owner == s.zone || !dns.IsSubDomain(owner, name) {
			continue
		}
		// A child zone: refer, with glue.
		for _, ns := range s.rrs {
			if ns.Header().Rrtype == dns.TypeNS && dns.CanonicalName(ns.Header().Name) == owner {
				resp.Ns = append(resp.Ns, ns)
				target := dns.CanonicalName(ns.(*dns.NS).Ns)
				for _, g := range s.rrs {
					if g.Header().Rrtype == dns.TypeA && dns.CanonicalName(g.Header().Name) == target {
						resp.Extra = append(resp.Extra, g)
					}
				}
			}
		}
		return
	}
	resp.Authoritative = true
	exists := false
	for _, rr := range s.rrs {
		owner := dns.CanonicalName(rr.Header().Name)
		if dns.IsSubDomain(name, owner) {
			exists = true
		}
		if owner == name && rr.Header().Rrtype == qtype {
			resp.Answer = append(resp.Answer, rr)
		}
	}
	if len(resp.Answer) > 0 {
		return
	}
	if !exists {
		resp.Rcode = dns.RcodeNameError
	}
	base := strings.TrimSuffix(s.zone, ".")
	soa, err := dns.NewRR(fmt.Sprintf("%s 60 IN SOA %s %s 1 3600 600 86400 60",
		s.zone, dns.Fqdn("ns."+base), dns.Fqdn("host."+base)))
	if err == nil {
		resp.Ns = append(resp.Ns, soa)
	}
}

// NewZone returns an authoritative handler for apex holding rrs (zone
// file lines): referrals below delegations, answers, NODATA for names
// that only have names below them, NXDOMAIN for the rest.
func NewZone(apex string, rrs []string) (dns.Handler, error) {
	s := &authServer{zone: dns.Fqdn(strings.ToLower(apex))}
	for _, line := range rrs {
		rr, err := dns.NewRR(line)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", line, err)
		}
		s.rrs = append(s.rrs, rr)
	}
	return s, nil
}
