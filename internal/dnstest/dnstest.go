// Package dnstest runs authoritative DNS servers for tests and
// benchmarks. A Zone answers from zone-file lines as an authoritative
// server does (referrals with glue, CNAMEs, wildcards, NODATA and
// NXDOMAIN with the zone's SOA); Serve puts a handler on UDP and TCP of
// one address; Start builds a hierarchy of servers on loopback addresses
// that share one port, with a root hints file naming the first.
package dnstest

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

	"veil/internal/dnsname"
)

// A Zone is an authoritative server for one or more apexes.
type Zone struct {
	apexes []string // canonical
	rrs    []dns.RR
	owners []string // canonical owner of rrs[i]

	// Mangle, when set before the zone serves, changes each response
	// before it is sent: a misbehaving server.
	Mangle func(req, resp *dns.Msg, udp bool)

	mu   sync.Mutex
	seen []string
}

// NewZone returns a zone for apexes holding records, each a zone-file
// line; blank lines are skipped.
func NewZone(apexes []string, records []string) (*Zone, error) {
	z := &Zone{}
	for _, a := range apexes {
		z.apexes = append(z.apexes, dns.CanonicalName(a))
	}
	for _, line := range records {
		if strings.TrimSpace(line) == "" {
			continue
		}
		rr, err := dns.NewRR(line)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", line, err)
		}
		z.rrs = append(z.rrs, rr)
		z.owners = append(z.owners, dns.CanonicalName(rr.Header().Name))
	}
	return z, nil
}

// NewSignedZone returns a zone for apexes holding rrs, such as Sign
// returns. With the DO bit, its answers carry the RRSIGs over the records
// they hold, and its negative answers the NSEC or NSEC3 records that
// prove them.
func NewSignedZone(apexes []string, rrs []dns.RR) *Zone {
	z := &Zone{}
	for _, a := range apexes {
		z.apexes = append(z.apexes, dns.CanonicalName(a))
	}
	for _, rr := range rrs {
		z.rrs = append(z.rrs, rr)
		z.owners = append(z.owners, dns.CanonicalName(rr.Header().Name))
	}
	return z
}

// MustZone is NewZone for records fixed in the source, given as the
// lines of one string.
func MustZone(records string, apexes ...string) *Zone {
	z, err := NewZone(apexes, strings.Split(records, "\n"))
	if err != nil {
		panic(err)
	}
	return z
}

// Records returns the zone's records, for Sign.
func (z *Zone) Records() []dns.RR { return slices.Clone(z.rrs) }

// Queries returns the question names the zone was asked, as sent (a
// resolver using 0x20 mixes their case).
func (z *Zone) Queries() []string {
	z.mu.Lock()
	defer z.mu.Unlock()
	return slices.Clone(z.seen)
}

// Count returns how often name was asked, in any case.
func (z *Zone) Count(name string) int {
	n := 0
	for _, q := range z.Queries() {
		if strings.EqualFold(q, name) {
			n++
		}
	}
	return n
}

func (z *Zone) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	resp := new(dns.Msg)
	resp.SetReply(req)
	if len(req.Question) != 1 {
		resp.Rcode = dns.RcodeFormatError
		w.WriteMsg(resp)
		return
	}
	q := req.Question[0]
	z.mu.Lock()
	z.seen = append(z.seen, q.Name)
	z.mu.Unlock()
	zone := z.answer(resp, q.Name, q.Qtype)
	if opt := req.IsEdns0(); opt != nil && opt.Do() && zone != "" {
		z.addDNSSEC(resp, zone, dns.CanonicalName(q.Name))
	}
	if z.Mangle != nil {
		_, udp := w.RemoteAddr().(*net.UDPAddr)
		z.Mangle(req, resp, udp)
	}
	w.WriteMsg(resp)
}

// answer fills resp and returns the zone it answered from; "" if it
// answered a referral or refused.
func (z *Zone) answer(resp *dns.Msg, qname string, qtype uint16) string {
	name := dns.CanonicalName(qname)
	zone := ""
	for _, a := range z.apexes {
		// A DS at a hosted child's apex is still the parent's to answer.
		if dns.IsSubDomain(a, name) && len(a) > len(zone) && (qtype != dns.TypeDS || a != name || a == ".") {
			zone = a
		}
	}
	if zone == "" {
		resp.Rcode = dns.RcodeRefused
		return ""
	}
	// A delegation below the apex on the way to name: refer, with glue.
	// The DS at the cut is the parent's to answer.
	for i, rr := range z.rrs {
		owner := z.owners[i]
		if rr.Header().Rrtype == dns.TypeNS && owner != zone && dns.IsSubDomain(zone, owner) && dns.IsSubDomain(owner, name) &&
			(qtype != dns.TypeDS || owner != name) {
			resp.Ns = z.records(owner, dns.TypeNS)
			resp.Extra = z.glue(resp.Ns)
			return ""
		}
	}
	resp.Authoritative = true
	if !z.exists(name) {
		// A wildcard at the closest encloser stands for the name.
		encloser := name
		for encloser != zone && !z.exists(encloser) {
			encloser = parent(encloser)
		}
		for _, rr := range z.records("*."+encloser, qtype) {
			rr = dns.Copy(rr)
			rr.Header().Name = qname
			resp.Answer = append(resp.Answer, rr)
		}
		if len(resp.Answer) > 0 {
			return zone
		}
		if len(z.records("*."+encloser, 0)) == 0 {
			resp.Rcode = dns.RcodeNameError
		}
		resp.Ns = z.soa(zone)
		return zone
	}
	resp.Answer = z.records(name, qtype)
	if len(resp.Answer) == 0 {
		if cname := z.records(name, dns.TypeCNAME); len(cname) > 0 {
			resp.Answer = append(cname, z.records(dns.CanonicalName(cname[0].(*dns.CNAME).Target), qtype)...)
		}
	}
	if qtype == dns.TypeNS {
		resp.Extra = z.glue(resp.Answer)
	}
	if len(resp.Answer) == 0 {
		resp.Ns = z.soa(zone) // NODATA
	}
	return zone
}

// addDNSSEC adds to an answer from zone the RRSIGs over its records and,
// for a negative or wildcard answer, the NSEC or NSEC3 records that
// prove it.
func (z *Zone) addDNSSEC(resp *dns.Msg, zone, name string) {
	sigs := func(rrs []dns.RR) []dns.RR {
		var out []dns.RR
		seen := map[string]bool{}
		for _, rr := range rrs {
			h := rr.Header()
			key := strings.ToLower(h.Name) + "/" + dns.TypeToString[h.Rrtype]
			if seen[key] || h.Rrtype == dns.TypeRRSIG {
				continue
			}
			seen[key] = true
			owner := dns.CanonicalName(h.Name)
			wild := false
			if !z.exists(owner) { // a wildcard expansion, from the closest encloser's
				e := parent(owner)
				for e != zone && !z.exists(e) {
					e = parent(e)
				}
				owner, wild = "*."+e, true
			}
			for _, s := range z.records(owner, dns.TypeRRSIG) {
				if s.(*dns.RRSIG).TypeCovered == h.Rrtype {
					s = dns.Copy(s)
					if wild {
						s.Header().Name = h.Name
					}
					out = append(out, s)
				}
			}
		}
		return out
	}
	resp.Answer = append(resp.Answer, sigs(resp.Answer)...)
	wildcard := false
	for _, rr := range resp.Answer {
		if s, ok := rr.(*dns.RRSIG); ok && int(s.Labels) < dns.CountLabel(s.Hdr.Name) {
			wildcard = true
		}
	}
	if len(resp.Answer) > 0 && !wildcard {
		return
	}
	// The closest encloser: the deepest ancestor of name that exists.
	ce := name
	for ce != zone && !z.exists(ce) {
		ce = parent(ce)
	}
	nextCloser := name
	for nextCloser != ce && parent(nextCloser) != ce {
		nextCloser = parent(nextCloser)
	}
	// What the proof is about (RFC 4035 section 3.1.3, RFC 5155 section
	// 7.2): the name itself (match for NODATA, cover otherwise) and, for
	// a name that does not exist, the wildcard at the closest encloser; with NSEC3 the
	// closest encloser and the next closer name stand for the name.
	nsecNames := []string{name}
	nsec3Names := []string{name}
	switch {
	case wildcard:
		nsec3Names = []string{nextCloser}
	case !z.exists(name): // NXDOMAIN, or NODATA from a wildcard
		nsecNames = append(nsecNames, "*."+ce)
		nsec3Names = []string{ce, nextCloser, "*." + ce}
	}
	var proof []dns.RR
	add := func(rr dns.RR) {
		if !slices.Contains(proof, rr) {
			proof = append(proof, rr)
		}
	}
	for _, c := range nsecNames {
		for i, rr := range z.rrs {
			if n, ok := rr.(*dns.NSEC); ok && (z.owners[i] == c || dnsname.Covers(z.owners[i], dns.CanonicalName(n.NextDomain), c)) {
				add(rr)
				break
			}
		}
	}
	for _, c := range nsec3Names {
		for _, rr := range z.rrs {
			if n, ok := rr.(*dns.NSEC3); ok && (n.Match(c) || n.Cover(c)) {
				add(rr)
				break
			}
		}
	}
	resp.Ns = append(resp.Ns, proof...)
	resp.Ns = append(resp.Ns, sigs(resp.Ns)...)
}

// records returns the records of owner (canonical) of type t, or of
// every type when t is 0.
func (z *Zone) records(owner string, t uint16) []dns.RR {
	var out []dns.RR
	for i, rr := range z.rrs {
		if z.owners[i] == owner && (t == 0 || rr.Header().Rrtype == t) {
			out = append(out, rr)
		}
	}
	return out
}

// exists reports whether name or a name below it has records.
func (z *Zone) exists(name string) bool {
	for _, owner := range z.owners {
		if dns.IsSubDomain(name, owner) {
			return true
		}
	}
	return false
}

// glue returns the addresses the zone holds for the targets of ns.
func (z *Zone) glue(ns []dns.RR) []dns.RR {
	var out []dns.RR
	for _, rr := range ns {
		if n, ok := rr.(*dns.NS); ok {
			target := dns.CanonicalName(n.Ns)
			out = append(out, z.records(target, dns.TypeA)...)
			out = append(out, z.records(target, dns.TypeAAAA)...)
		}
	}
	return out
}

// soa returns the zone's SOA, or one made up for it: TTL 300, negative
// answers cached 120 s.
func (z *Zone) soa(zone string) []dns.RR {
	if rrs := z.records(zone, dns.TypeSOA); len(rrs) > 0 {
		return rrs
	}
	base := strings.TrimSuffix(zone, ".")
	rr, err := dns.NewRR(fmt.Sprintf("%s 300 IN SOA %s %s 1 3600 600 86400 120",
		zone, dns.Fqdn("ns."+base), dns.Fqdn("host."+base)))
	if err != nil {
		return nil
	}
	return []dns.RR{rr}
}

func parent(name string) string {
	if i, end := dns.NextLabel(name, 0); !end {
		return name[i:]
	}
	return "."
}

// A Server serves one handler on UDP and TCP of one address.
type Server struct {
	// Port is the port both listen on.
	Port    int
	servers []*dns.Server
}

// Serve starts h on addr over UDP and TCP; port 0 picks a port free for
// both.
func Serve(addr netip.AddrPort, h dns.Handler) (*Server, error) {
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, err
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(addr.Addr(), uint16(port))))
	if err != nil {
		pc.Close()
		return nil, err
	}
	s := &Server{Port: port}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		s.servers = append(s.servers, srv)
	}
	return s, nil
}

// Close stops both listeners.
func (s *Server) Close() {
	for _, srv := range s.servers {
		srv.Shutdown()
	}
}

// A Host is one server of a hierarchy. A Host without a Handler only
// reserves its address: Start checks that the hierarchy's port is free
// there, for the caller to serve.
type Host struct {
	Addr    netip.Addr
	Handler dns.Handler
}

// A Hierarchy is a set of servers on one port.
type Hierarchy struct {
	// Port is the port every host listens on.
	Port int
	// Hints is a root hints file naming the first host a.root.test.
	Hints   string
	servers []*Server
}

// Start serves hosts on one port, trying again with another port when
// one is taken, and stops them at the end of the test.
func Start(tb testing.TB, hosts ...Host) *Hierarchy {
	tb.Helper()
	for attempt := 0; ; attempt++ {
		h, err := start(hosts)
		if err == nil {
			tb.Cleanup(h.Stop)
			h.Hints = filepath.Join(tb.TempDir(), "root.hints")
			hints := ". 3600000 NS a.root.test.\na.root.test. 3600000 A " + hosts[0].Addr.String() + "\n"
			if err := os.WriteFile(h.Hints, []byte(hints), 0o644); err != nil {
				tb.Fatal(err)
			}
			return h
		}
		h.Stop()
		if attempt == 5 {
			tb.Fatalf("starting the DNS hierarchy: %v", err)
		}
	}
}

func start(hosts []Host) (*Hierarchy, error) {
	h := &Hierarchy{}
	for _, host := range hosts {
		if host.Handler == nil {
			continue
		}
		s, err := Serve(netip.AddrPortFrom(host.Addr, uint16(h.Port)), host.Handler)
		if err != nil {
			return h, err
		}
		h.servers = append(h.servers, s)
		h.Port = s.Port
	}
	for _, host := range hosts {
		if host.Handler != nil {
			continue
		}
		s, err := Serve(netip.AddrPortFrom(host.Addr, uint16(h.Port)), dns.HandlerFunc(func(dns.ResponseWriter, *dns.Msg) {}))
		if err != nil {
			return h, err
		}
		s.Close()
	}
	return h, nil
}

// Stop stops every server of the hierarchy, before the test ends if the
// test needs its upstreams gone.
func (h *Hierarchy) Stop() {
	for _, s := range h.servers {
		s.Close()
	}
	h.servers = nil
}
