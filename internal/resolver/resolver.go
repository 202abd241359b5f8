// Package resolver is Veil's no-log DNS resolver (promises P2 and P4): a
// recursive resolver that each gateway runs on its tunnel address, for its
// peers only. It resolves iteratively from the root by default, or forwards
// over DNS-over-TLS or DNS-over-HTTPS to operator-chosen upstreams. Its
// cache lives in memory only, and no query name, client address or answer
// is ever logged, written to a file or counted in a metric.
//
// Wire it to a socket with miekg/dns:
//
//	srv := &dns.Server{
//		PacketConn:    res.PacketConn(pc), // drops packets from non-allowed sources
//		Handler:       res,
//		MsgAcceptFunc: res.AcceptMsg,      // sends nothing back for garbage
//	}
//
// ServeDNS checks Config.Allow itself too, so a plain
// dns.Server{PacketConn: pc, Handler: res} is never an open resolver either.
// For UDP, res.ServePacket(ctx, pc) is a faster alternative to dns.Server:
// it answers cache hits without a goroutine per packet.
package resolver

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sync/singleflight"

	"veil/internal/netguard"
)

// Defaults for the zero values of Config.
const (
	DefaultCacheSize  = 100_000
	DefaultServeStale = time.Hour
	DefaultTimeout    = 2 * time.Second
	DefaultRateLimit  = 200 // responses per second per client
	// EDNSBufferSize is the UDP payload size advertised upstream and to
	// clients (the DNS flag day 2020 value).
	EDNSBufferSize = 1232
)

// ErrServFail is returned by Resolve when no upstream gave a usable answer
// and nothing stale is cached.
var ErrServFail = errors.New("resolution failed")

// Config configures a Resolver. The zero value is a recursive resolver
// from the built-in IANA root hints that serves loopback clients only.
type Config struct {
	// RootHints is a root-hints file in named.root format; empty means the
	// built-in IANA root hints.
	RootHints string
	// Port is the port upstream authoritative servers listen on; 0 means
	// 53. It is for tests, which run their own root, TLD and authoritative
	// servers on loopback addresses sharing one port.
	Port int
	// Forward, when set, sends queries to these upstreams instead of
	// recursing: "tls://host:853#servername" (port defaults to 853,
	// servername to host) or "https://host/dns-query". Certificates are
	// always checked against RootCAs. Forwarders are trusted to validate:
	// their AD bit is passed on, over the authenticated channel (RFC 6840
	// section 5.7), and their SERVFAIL for bogus data too.
	Forward []string
	// TrustAnchor is a file of DS or DNSKEY records, in presentation
	// format, for the zone DNSSEC validation starts from; empty means the
	// built-in IANA root anchor (root-anchors.txt, which says how to
	// update it).
	TrustAnchor string
	// DisableDNSSEC turns validation off: answers are never secure nor
	// bogus. It is for test hierarchies whose root is not signed.
	DisableDNSSEC bool
	// RootCAs verifies forward upstreams; nil means the system pool.
	RootCAs *x509.CertPool
	// Egress decides which upstream addresses the resolver may send to:
	// root hints, glue, resolved name server addresses and forwarders
	// alike, checked before every datagram and connection. Delegations
	// come from the internet, so without it a zone could point the
	// resolver at the host's loopback, metadata or private addresses, or
	// at other peers' tunnel addresses. netguard.Guard.Permit fits; the
	// gateway passes its egress guard (special ranges refused unless
	// --egress-allow opens them, tunnel pools always refused). Forwarders
	// are operator-chosen but get the same rule, so that one place
	// decides: a forwarder on a private or loopback address needs
	// --egress-allow. Nil means netguard.Guard{}.Permit.
	Egress func(netip.Addr) error
	// Allow reports whether a client address may use the resolver. Nil
	// allows loopback clients only. The gateway passes "is one of my
	// peers' tunnel addresses". Queries from other sources are dropped
	// without a reply, on UDP and TCP.
	Allow func(netip.Addr) bool
	// CacheSize bounds the cache in entries; 0 means DefaultCacheSize.
	CacheSize int
	// ServeStale is how long past its TTL an answer may still be served
	// when upstreams fail; 0 means DefaultServeStale, negative disables.
	ServeStale time.Duration
	// Timeout bounds one upstream exchange; 0 means DefaultTimeout.
	Timeout time.Duration
	// RateLimit is the number of responses per second one client may get
	// (burst of twice as many); 0 means DefaultRateLimit, negative
	// disables. Excess queries are dropped.
	RateLimit int
	// Blocklists maps a category ("ads", "trackers", "malware", "adult",
	// "gambling", or any other name) to a file in hosts format
	// ("0.0.0.0 name") or domain-list format (one name a line). A listed
	// name blocks its subdomains too. Blocked names answer NXDOMAIN.
	Blocklists map[string]string
	// BlockPolicy returns the blocklist categories enabled for a client;
	// nil blocks nothing.
	BlockPolicy func(netip.Addr) []string
	// Logger receives operational events only, never names or addresses;
	// nil discards.
	Logger *slog.Logger
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
}

// Resolver answers DNS queries. It implements dns.Handler.
type Resolver struct {
	log        *slog.Logger
	now        func() time.Time
	allow      func(netip.Addr) bool
	egress     func(netip.Addr) error
	port       uint16
	udp4, udp6 *udpPool // upstream sockets for recursion
	roots      []netip.Addr
	anchor     *anchor // nil: no validation
	forward    []upstream
	timeout    time.Duration
	serveStale time.Duration
	cache      *cache
	limiter    *limiter
	blocks     *blocklist
	policy     func(netip.Addr) []string
	flight     singleflight.Group
	noWire     bool // tests: answer cache hits through the general path only
	// verifications counts signature checks, so tests can see that cache
	// hits cost none.
	verifications atomic.Int64
	sigs          verified // signatures already verified
	// misses hands a query that waits for upstream servers to an idle
	// worker goroutine (see serveMiss).
	misses chan missJob
}

var _ dns.Handler = (*Resolver)(nil)

// New returns a Resolver for cfg. It reads the root hints and blocklist
// files once.
func New(cfg Config) (*Resolver, error) {
	r := &Resolver{
		misses:     make(chan missJob),
		log:        cfg.Logger,
		now:        cfg.Clock,
		allow:      cfg.Allow,
		egress:     cfg.Egress,
		port:       53,
		udp4:       newUDPPool("udp4"),
		udp6:       newUDPPool("udp6"),
		timeout:    cfg.Timeout,
		serveStale: cfg.ServeStale,
		policy:     cfg.BlockPolicy,
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.log = r.log.With("component", "resolver")
	if r.now == nil {
		r.now = time.Now
	}
	if r.allow == nil {
		r.allow = func(a netip.Addr) bool { return a.Unmap().IsLoopback() }
	}
	if r.egress == nil {
		r.egress = netguard.Guard{}.Permit
	}
	if cfg.Port != 0 {
		if cfg.Port < 0 || cfg.Port > 65535 {
			return nil, fmt.Errorf("upstream port %d out of range", cfg.Port)
		}
		r.port = uint16(cfg.Port)
	}
	if r.timeout <= 0 {
		r.timeout = DefaultTimeout
	}
	switch {
	case r.serveStale == 0:
		r.serveStale = DefaultServeStale
	case r.serveStale < 0:
		r.serveStale = 0
	}
	size := cfg.CacheSize
	if size <= 0 {
		size = DefaultCacheSize
	}
	r.cache = newCache(size)
	rate := cfg.RateLimit
	if rate == 0 {
		rate = DefaultRateLimit
	}
	if rate > 0 {
		r.limiter = newLimiter(rate, r.now)
	}
	var err error
	if len(cfg.Forward) > 0 {
		if r.forward, err = parseUpstreams(cfg.Forward, cfg.RootCAs, r.timeout, r.egress); err != nil {
			return nil, err
		}
	} else if r.roots, err = loadRootHints(cfg.RootHints); err != nil {
		return nil, err
	}
	if !cfg.DisableDNSSEC && len(r.forward) == 0 {
		if r.anchor, err = loadAnchor(cfg.TrustAnchor); err != nil {
			return nil, err
		}
	}
	if r.blocks, err = loadBlocklists(cfg.Blocklists); err != nil {
		return nil, err
	}
	return r, nil
}

// clientAddr extracts the client's IP from a net.Addr of any kind
// (net.UDPAddr, net.TCPAddr, or gVisor's adapters, which use those too).
func clientAddr(a net.Addr) (netip.Addr, bool) {
	switch a := a.(type) {
	case *net.UDPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), ok
	case *net.TCPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), ok
	case nil:
		return netip.Addr{}, false
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// allowed reports whether a may use the resolver.
func (r *Resolver) allowed(a net.Addr) (netip.Addr, bool) {
	ip, ok := clientAddr(a)
	if !ok || !r.allow(ip) {
		return ip, false
	}
	return ip, true
}

// Resolve answers name and qtype (class IN) from the cache or upstream. It
// applies no blocklist and no rate limit: those belong to clients.
func (r *Resolver) Resolve(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	return r.resolve(ctx, dns.CanonicalName(name), qtype)
}
