package resolver

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// Limits of the encrypted front ends.
const (
	// DefaultMaxConns bounds the connections one front end holds open.
	DefaultMaxConns = 4096
	// DefaultConnRate is the number of new connections per second one
	// client may open (burst of twice as many); excess ones are closed
	// before the TLS handshake, which is what costs the server.
	DefaultConnRate = 20
	// maxQuery is the largest query accepted: a header, one question and
	// an OPT record with padding fit many times over.
	maxQuery = 4096
)

// EncryptedConfig configures the DNS over TLS and HTTPS front ends of a
// Resolver.
type EncryptedConfig struct {
	// GetCertificate returns the server's certificate (certfile.Files.GetCertificate gives
	// one that follows files on disk); required.
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// Public makes a public service: the blocking categories are the
	// ones the client names, by host name under Domain
	// ("ads-malware.dns.example") or by DoH path
	// ("/dns-query/ads+malware"), instead of Config.BlockPolicy's for its
	// address. Unset (a gateway's tunnel address), DoH answers only
	// /dns-query and the client's address decides.
	Public bool
	// Domain is the public service's own host name; its one-label
	// subdomains name categories. Empty: host names choose nothing.
	Domain string
	// MaxConns bounds open connections; 0 means DefaultMaxConns.
	MaxConns int
	// ConnRate is the new connections per second one client may open; 0
	// means DefaultConnRate, negative disables.
	ConnRate int
}

// Encrypted serves a Resolver over DNS over TLS (RFC 7858) and DNS over
// HTTPS (RFC 8484). Every query goes through Resolver.ServeDNS, so the
// resolver's client check, rate limit, blocklists and DNSSEC handling
// apply as on UDP and TCP; the front ends add framing and TLS only. Like
// the resolver, they log nothing about a query or a client, and keep
// nothing but a keyed hash of client addresses for the connection rate,
// in memory.
type Encrypted struct {
	r      *Resolver
	public bool
	domain string
	conns  *limiter // nil: no connection rate
	slots  chan struct{}
	tlsDoT *tls.Config
	tlsDoH *tls.Config
}

// ErrUnknownCategory is returned for a host name or path naming a
// blocking category the operator has no list for.
var ErrUnknownCategory = errors.New("unknown blocking category")

// Encrypted returns the DNS over TLS and HTTPS front ends of r.
func (r *Resolver) Encrypted(cfg EncryptedConfig) (*Encrypted, error) {
	if cfg.GetCertificate == nil {
		return nil, errors.New("encrypted DNS: no certificate")
	}
	e := &Encrypted{
		r:      r,
		public: cfg.Public,
		domain: strings.TrimSuffix(strings.ToLower(cfg.Domain), "."),
	}
	n := cfg.MaxConns
	if n <= 0 {
		n = DefaultMaxConns
	}
	e.slots = make(chan struct{}, n)
	rate := cfg.ConnRate
	if rate == 0 {
		rate = DefaultConnRate
	}
	if rate > 0 {
		e.conns = newLimiter(rate, r.now)
	}
	base := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: cfg.GetCertificate,
	}
	if e.public {
		// A host name naming no known category fails the handshake, so
		// that a typo never silently gives an unfiltered service.
		base.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			if _, err := e.hostMask(hello.ServerName); err != nil {
				return nil, err
			}
			return nil, nil
		}
	}
	e.tlsDoT = base.Clone()
	e.tlsDoT.NextProtos = []string{"dot"}
	e.tlsDoH = base.Clone()
	e.tlsDoH.NextProtos = []string{"h2", "http/1.1"}
	return e, nil
}

// admit reports whether a connection from addr may be served, taking a
// slot that release gives back.
func (e *Encrypted) admit(addr net.Addr) (client netip.Addr, release func(), ok bool) {
	client, ok = e.r.allowed(addr)
	if !ok || (e.conns != nil && !e.conns.allow(client)) {
		return client, nil, false
	}
	select {
	case e.slots <- struct{}{}:
		var once sync.Once
		return client, func() { once.Do(func() { <-e.slots }) }, true
	default:
		return client, nil, false
	}
}

// categoryMask returns the mask of a list of category names separated
// by "-" or "+"; "all" names every category the operator has a list for.
func (e *Encrypted) categoryMask(list string) (uint64, error) {
	var m uint64
	for c := range strings.FieldsFuncSeq(list, func(r rune) bool { return r == '-' || r == '+' }) {
		if c == "all" {
			for _, bit := range e.r.blocks.categories {
				m |= bit
			}
			continue
		}
		bit, ok := e.r.blocks.categories[c]
		if !ok {
			return 0, fmt.Errorf("%w %q", ErrUnknownCategory, c)
		}
		m |= bit
	}
	return m, nil
}

// hostMask returns the categories a host name chooses: those its first
// label names when it is a one-label subdomain of the service's domain,
// none for any other name (the domain itself, an address, no name).
func (e *Encrypted) hostMask(host string) (uint64, error) {
	if e.domain == "" {
		return 0, nil
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	label, ok := strings.CutSuffix(host, "."+e.domain)
	if !ok || label == "" || strings.Contains(label, ".") {
		return 0, nil
	}
	return e.categoryMask(label)
}

// clientWriter is the dns.ResponseWriter of one query arriving over an
// encrypted front end: it tells ServeDNS the client's address as TCP (so
// answers are sized for a stream), and the blocking categories the
// client chose on a public service. send delivers the packed answer.
type clientWriter struct {
	local  net.Addr
	remote *net.TCPAddr
	chosen bool   // mask replaces Config.BlockPolicy
	mask   uint64 // categories the client chose
	send   func([]byte) error
	sent   bool
}

var _ dns.ResponseWriter = (*clientWriter)(nil)

func newClientWriter(local net.Addr, client netip.Addr, send func([]byte) error) *clientWriter {
	return &clientWriter{local: local, remote: &net.TCPAddr{IP: client.AsSlice()}, send: send}
}

// LocalAddr returns the front end's address.
func (w *clientWriter) LocalAddr() net.Addr { return w.local }

// RemoteAddr returns the client's address, without its port.
func (w *clientWriter) RemoteAddr() net.Addr { return w.remote }

// WriteMsg packs m and sends it.
func (w *clientWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// Write sends one packed answer.
func (w *clientWriter) Write(b []byte) (int, error) {
	w.sent = true
	if err := w.send(b); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Close does nothing: the front end owns the connection.
func (w *clientWriter) Close() error { return nil }

// TsigStatus reports no TSIG error: the resolver does not use TSIG.
func (w *clientWriter) TsigStatus() error { return nil }

// TsigTimersOnly does nothing: the resolver does not use TSIG.
func (w *clientWriter) TsigTimersOnly(bool) {}

// Hijack does nothing: the front end owns the connection.
func (w *clientWriter) Hijack() {}

// blockMask returns the blocking categories of a query written to w by
// client: those it chose on a public encrypted service, else
// Config.BlockPolicy's for its address.
func (r *Resolver) blockMask(w dns.ResponseWriter, client netip.Addr) uint64 {
	if cw, ok := w.(*clientWriter); ok && cw.chosen {
		return cw.mask
	}
	if r.policy == nil {
		return 0
	}
	return r.blocks.mask(r.policy(client))
}

// parseQuery unpacks one query received over an encrypted front end,
// refusing what ServeDNS would drop without an answer.
func (r *Resolver) parseQuery(b []byte) (*dns.Msg, error) {
	if len(b) < 12 {
		return nil, errors.New("shorter than a DNS header")
	}
	if len(b) > maxQuery {
		return nil, fmt.Errorf("query of %d bytes, at most %d", len(b), maxQuery)
	}
	var dh dns.Header
	dh.Id = uint16(b[0])<<8 | uint16(b[1])
	dh.Bits = uint16(b[2])<<8 | uint16(b[3])
	dh.Qdcount = uint16(b[4])<<8 | uint16(b[5])
	dh.Ancount = uint16(b[6])<<8 | uint16(b[7])
	dh.Nscount = uint16(b[8])<<8 | uint16(b[9])
	dh.Arcount = uint16(b[10])<<8 | uint16(b[11])
	if r.AcceptMsg(dh) != dns.MsgAccept {
		return nil, errors.New("not a DNS query")
	}
	req := new(dns.Msg)
	if err := req.Unpack(b); err != nil {
		return nil, errors.New("not a DNS message")
	}
	if req.Response || len(req.Question) != 1 {
		return nil, errors.New("not a DNS query")
	}
	return req, nil
}
