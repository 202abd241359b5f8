// Package dnsleak is the DNS leak test: an authoritative DNS server for a
// zone of its own, and the HTTP API and page around it. A test id is
// issued; the browser (or dig, or `veil status --check`) resolves a few
// random names under it; the server notes which resolvers asked, and with
// which EDNS client subnet. If all of them are Veil's own resolvers, DNS
// does not leak.
//
// What is noted lives in memory only and is dropped when the test expires
// (at most 10 minutes, promise P12). No visitor address is ever noted:
// only the resolvers that ask, and the subnet they choose to reveal. The
// API counts the tests each visitor starts by a keyed hash in memory
// (package throttle), tied to no test.
package dnsleak

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"veil/internal/geo"
	"veil/internal/redact"
	"veil/internal/throttle"
	"veil/internal/visitor"
)

// MaxTTL is the longest a test is kept, whatever the config says.
const MaxTTL = 10 * time.Minute

// Config is what a Server needs. Zero fields have the defaults their
// comments give.
type Config struct {
	// Zone is the zone the server is authoritative for, such as
	// "leak.veil.example". Its NS records at the parent must point here.
	Zone string
	// Addr is the UDP and TCP listen address, such as ":53"; default
	// "127.0.0.1:5353". With port 0 both bind the same free port.
	Addr string
	// NS are the names of the zone's name servers, for the apex NS
	// answer; default "ns1.<Zone>".
	NS []string
	// NSAddrs are the addresses the NS names (and names under test ids)
	// resolve to; usually the public addresses of this server. Empty: the
	// names get no A/AAAA records (NODATA), which is enough for the test.
	NSAddrs []netip.Addr
	// Geo places the resolvers. If nil, their location is "unknown".
	Geo *geo.DB
	// IsOurResolver says whether an address is one of Veil's resolvers
	// (the egress addresses of the gateways), and which. If nil, none is.
	IsOurResolver func(netip.Addr) (name string, ok bool)
	// Clock tells the time. If nil, time.Now.
	Clock func() time.Time
	// TTL is how long a test is kept; default and maximum MaxTTL.
	TTL time.Duration
	// Names is how many random names a test hands out; default 6.
	Names int
	// MaxTests bounds the tests held at once; default 10000. Beyond it,
	// new tests are refused until old ones expire.
	MaxTests int
	// PerVisitor bounds the tests one visitor may start over the API
	// within TTL, so that no one visitor can fill MaxTests; default 60.
	PerVisitor int
	// Visitors tells visitors apart for PerVisitor; nil: by TCP peer.
	Visitors *visitor.Resolver
	// Logger gets server errors, never an address or a name. If nil,
	// nothing is logged.
	Logger *slog.Logger
}

// ErrFull is returned by NewTest when MaxTests tests are running.
var ErrFull = errors.New("too many dns leak tests running")

// ErrNotFound is returned for an unknown or expired test id.
var ErrNotFound = errors.New("dns leak test not found")

// Server is the authoritative server and the test registry.
type Server struct {
	cfg  Config
	zone string // canonical, with trailing dot, lower case
	log  *slog.Logger

	// perVisitor counts the tests each visitor starts, by keyed hash in
	// memory; a test itself holds nothing of who started it.
	perVisitor *throttle.Throttle

	mu    sync.Mutex
	tests map[string]*test
}

type test struct {
	expires   time.Time
	resolvers map[netip.Addr]*seen
}

type seen struct {
	queries int
	subnets map[netip.Prefix]struct{}
}

// New returns a server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Zone == "" {
		return nil, errors.New("dns leak zone is not set")
	}
	if _, ok := dns.IsDomainName(cfg.Zone); !ok {
		return nil, fmt.Errorf("dns leak zone %q is not a domain name", cfg.Zone)
	}
	zone := strings.ToLower(dns.Fqdn(cfg.Zone))
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:5353"
	}
	if len(cfg.NS) == 0 {
		cfg.NS = []string{"ns1." + zone}
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.TTL <= 0 || cfg.TTL > MaxTTL {
		cfg.TTL = MaxTTL
	}
	if cfg.Names <= 0 {
		cfg.Names = 6
	}
	if cfg.MaxTests <= 0 {
		cfg.MaxTests = 10000
	}
	if cfg.PerVisitor <= 0 {
		cfg.PerVisitor = 60
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	perVisitor := throttle.New(cfg.PerVisitor, cfg.TTL)
	perVisitor.Now = cfg.Clock
	return &Server{cfg: cfg, zone: zone, log: log, perVisitor: perVisitor, tests: map[string]*test{}}, nil
}

// Zone is the zone served, with a trailing dot.
func (s *Server) Zone() string { return s.zone }

// Test is a new test as handed to the browser: the names to resolve.
type Test struct {
	ID        string    `json:"id"`
	Names     []string  `json:"names"`
	ExpiresAt time.Time `json:"expires_at"`
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b)
}

// NewTest issues a test id and the random names to resolve under it.
func (s *Server) NewTest() (Test, error) {
	now := s.cfg.Clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	if len(s.tests) >= s.cfg.MaxTests {
		return Test{}, ErrFull
	}
	id := randomHex(8)
	t := &test{expires: now.Add(s.cfg.TTL), resolvers: map[netip.Addr]*seen{}}
	s.tests[id] = t
	out := Test{ID: id, ExpiresAt: t.expires}
	for range s.cfg.Names {
		out.Names = append(out.Names, randomHex(5)+"."+id+"."+strings.TrimSuffix(s.zone, "."))
	}
	return out, nil
}

func (s *Server) sweepLocked(now time.Time) {
	for id, t := range s.tests {
		if !now.Before(t.expires) {
			delete(s.tests, id)
		}
	}
}

// Len is how many tests are held; for aggregate metrics.
func (s *Server) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(s.cfg.Clock())
	return len(s.tests)
}

// note records that resolver asked about a name of test id.
func (s *Server) note(id string, resolver netip.Addr, subnet netip.Prefix) {
	now := s.cfg.Clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tests[id]
	if !ok || !now.Before(t.expires) {
		return
	}
	r := t.resolvers[resolver]
	if r == nil {
		if len(t.resolvers) >= 64 { // a test sees a handful; bound a flood
			return
		}
		r = &seen{subnets: map[netip.Prefix]struct{}{}}
		t.resolvers[resolver] = r
	}
	r.queries++
	if subnet.IsValid() && len(r.subnets) < 8 {
		r.subnets[subnet] = struct{}{}
	}
}

// Verdicts of a Result.
const (
	// NoLeak: every resolver that asked is one of Veil's.
	NoLeak = "no_leak"
	// Leak: at least one resolver that asked is not Veil's.
	Leak = "leak"
	// NoQueries: no resolver has asked yet; the names were not resolved,
	// or not through DNS.
	NoQueries = "no_queries"
)

// Result is what a test has seen: GET /api/v1/dnsleak/{id}.
type Result struct {
	ID        string     `json:"id"`
	ExpiresAt time.Time  `json:"expires_at"`
	Verdict   string     `json:"verdict"`
	Summary   string     `json:"summary"`
	Resolvers []Resolver `json:"resolvers"`
}

// Resolver is one resolver that asked, where it is and whose it is.
type Resolver struct {
	IP         string `json:"ip"`
	Ours       bool   `json:"ours"`
	Gateway    string `json:"gateway,omitempty"`
	Country    string `json:"country"`
	CountryISO string `json:"country_iso"`
	City       string `json:"city"`
	ASN        string `json:"asn"`
	ASNOrg     string `json:"asn_org"`
	Queries    int    `json:"queries"`
	// ClientSubnets are the EDNS client subnets the resolver sent: the
	// part of the user's address it passed on to us.
	ClientSubnets []string `json:"client_subnets,omitempty"`
}

// Result returns what test id has seen so far.
func (s *Server) Result(id string) (*Result, error) {
	now := s.cfg.Clock()
	s.mu.Lock()
	t, ok := s.tests[strings.ToLower(id)]
	if !ok || !now.Before(t.expires) {
		s.mu.Unlock()
		return nil, ErrNotFound
	}
	res := &Result{ID: id, ExpiresAt: t.expires, Resolvers: []Resolver{}}
	for ip, r := range t.resolvers {
		rv := Resolver{IP: ip.String(), Queries: r.queries}
		for p := range r.subnets {
			rv.ClientSubnets = append(rv.ClientSubnets, p.String())
		}
		sort.Strings(rv.ClientSubnets)
		res.Resolvers = append(res.Resolvers, rv)
	}
	s.mu.Unlock()

	ours := 0
	for i := range res.Resolvers {
		rv := &res.Resolvers[i]
		ip := netip.MustParseAddr(rv.IP)
		info := s.cfg.Geo.Lookup(ip)
		rv.Country, rv.CountryISO, rv.City, rv.ASN, rv.ASNOrg = info.Country, info.CountryISO, info.City, info.ASNString, info.ASOrg
		if s.cfg.IsOurResolver != nil {
			rv.Gateway, rv.Ours = s.cfg.IsOurResolver(ip)
		}
		if rv.Ours {
			ours++
		}
	}
	sort.Slice(res.Resolvers, func(i, j int) bool { return res.Resolvers[i].IP < res.Resolvers[j].IP })
	switch {
	case len(res.Resolvers) == 0:
		res.Verdict, res.Summary = NoQueries, "No resolver has asked for the test names yet."
	case ours == len(res.Resolvers):
		res.Verdict, res.Summary = NoLeak, "No DNS leak: every resolver that asked is one of Veil's."
	default:
		res.Verdict = Leak
		res.Summary = fmt.Sprintf("DNS leak: %d of %d resolvers that asked are not Veil's; they see the names you look up.", len(res.Resolvers)-ours, len(res.Resolvers))
	}
	return res, nil
}

// ServeDNS answers queries for the zone and notes who asks about test
// names. It implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name) // resolvers randomise case (0x20)
	if !dns.IsSubDomain(s.zone, name) {
		m.Rcode = dns.RcodeRefused
		m.Authoritative = false
		w.WriteMsg(m)
		return
	}
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(1232, false)
	}
	rest := strings.TrimSuffix(strings.TrimSuffix(name, s.zone), ".")
	labels := dns.SplitDomainName(rest)
	switch {
	case rest == "":
		s.apex(m, q)
	case isNS(s.cfg.NS, name):
		m.Answer = s.addrs(q)
	case len(labels) == 1:
		// <id>.<zone> holds only the test names below it: an empty
		// non-terminal, NODATA. NXDOMAIN would tell a QNAME-minimising
		// resolver (RFC 9156, 8020), Veil's own among them, that no test
		// name exists, and it would never ask for one.
		m.Ns = []dns.RR{s.soa()}
	case len(labels) == 2:
		// <random>.<id>.<zone>
		if resolver, ok := peer(w.RemoteAddr()); ok {
			s.log.Debug("dns leak query", "resolver", redact.Addr(resolver), "name", redact.Name(name))
			s.note(labels[1], resolver, clientSubnet(req))
		}
		m.Answer = s.addrs(q)
		if len(m.Answer) == 0 {
			m.Ns = []dns.RR{s.soa()}
		}
	default:
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{s.soa()}
	}
	if err := w.WriteMsg(m); err != nil {
		s.log.Debug("writing dns answer", "err", err)
	}
}

func isNS(ns []string, name string) bool {
	for _, n := range ns {
		if strings.EqualFold(dns.Fqdn(n), name) {
			return true
		}
	}
	return false
}

func (s *Server) apex(m *dns.Msg, q dns.Question) {
	switch q.Qtype {
	case dns.TypeSOA:
		m.Answer = []dns.RR{s.soa()}
	case dns.TypeNS:
		for _, n := range s.cfg.NS {
			m.Answer = append(m.Answer, &dns.NS{Hdr: dns.RR_Header{Name: s.zone, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 3600}, Ns: dns.Fqdn(n)})
		}
	default:
		m.Ns = []dns.RR{s.soa()}
	}
}

func (s *Server) soa() dns.RR {
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: s.zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 0},
		Ns:      dns.Fqdn(s.cfg.NS[0]),
		Mbox:    "hostmaster." + s.zone,
		Serial:  1,
		Refresh: 3600, Retry: 600, Expire: 86400,
		Minttl: 0, // no negative caching: every test name must reach us
	}
}

func (s *Server) addrs(q dns.Question) []dns.RR {
	var out []dns.RR
	for _, a := range s.cfg.NSAddrs {
		hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: 0}
		switch {
		case q.Qtype == dns.TypeA && a.Is4():
			hdr.Rrtype = dns.TypeA
			out = append(out, &dns.A{Hdr: hdr, A: a.AsSlice()})
		case q.Qtype == dns.TypeAAAA && a.Is6():
			hdr.Rrtype = dns.TypeAAAA
			out = append(out, &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
		}
	}
	return out
}

func peer(a net.Addr) (netip.Addr, bool) {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap(), true
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

func clientSubnet(req *dns.Msg) netip.Prefix {
	opt := req.IsEdns0()
	if opt == nil {
		return netip.Prefix{}
	}
	for _, o := range opt.Option {
		if e, ok := o.(*dns.EDNS0_SUBNET); ok {
			ip, ok := netip.AddrFromSlice(e.Address)
			if !ok {
				return netip.Prefix{}
			}
			p, err := ip.Unmap().Prefix(int(e.SourceNetmask))
			if err != nil {
				return netip.Prefix{}
			}
			return p
		}
	}
	return netip.Prefix{}
}

// listenBoth binds UDP and TCP on one port. With port 0 the system picks
// the UDP port, which TCP may have in use (an outgoing connection's local
// port): then another is tried.
func listenBoth(addr string) (net.PacketConn, net.Listener, error) {
	_, port, _ := net.SplitHostPort(addr)
	for try := 0; ; try++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("listening for dns on udp: %w", err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, l, nil
		}
		pc.Close()
		if port != "0" || !errors.Is(err, syscall.EADDRINUSE) || try == 20 {
			return nil, nil, fmt.Errorf("listening for dns on tcp: %w", err)
		}
	}
}

// Start binds UDP and TCP on Config.Addr (the same port) and serves until
// ctx ends. It returns the bound address once both listen.
func (s *Server) Start(ctx context.Context) (net.Addr, error) {
	pc, l, err := listenBoth(s.cfg.Addr)
	if err != nil {
		return nil, err
	}
	udp := &dns.Server{PacketConn: pc, Handler: s}
	tcp := &dns.Server{Listener: l, Handler: s}
	for _, srv := range []*dns.Server{udp, tcp} {
		go func() {
			if err := srv.ActivateAndServe(); err != nil && ctx.Err() == nil {
				s.log.Error("dns leak server stopped", "err", err)
			}
		}()
	}
	go func() {
		<-ctx.Done()
		udp.Shutdown()
		tcp.Shutdown()
	}()
	go s.sweeper(ctx)
	return pc.LocalAddr(), nil
}

// Run serves DNS on Config.Addr until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	if _, err := s.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// sweeper drops expired tests every minute, so that nothing outlives its
// TTL even when nobody asks.
func (s *Server) sweeper(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.mu.Lock()
			s.sweepLocked(s.cfg.Clock())
			s.mu.Unlock()
		}
	}
}

// ImgSrc are the Content-Security-Policy img-src sources a page needs to
// make the browser resolve test names.
func (s *Server) ImgSrc() []string {
	z := strings.TrimSuffix(s.zone, ".")
	return []string{"http://*." + z, "https://*." + z}
}
