package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/miekg/dns"

	"veil/internal/certfile"
	"veil/internal/netguard"
	"veil/internal/resolver"
)

// NewWithResolver creates a gateway that serves a no-log resolver, built
// from rc, on its tunnel addresses. The resolver answers the gateway's
// peers only: rc.Allow is replaced by a check that the source is inside
// the tunnel pools, which the gateway learns from the control plane, and
// rc.BlockPolicy by each peer's blocking categories from the peer map, and
// rc.Egress by the gateway's egress guard, so that no delegation can point
// the resolver at the host, a private network or another peer. The HTTPS
// proxy resolves its destinations with the same resolver.
func NewWithResolver(cfg Config, rc resolver.Config) (*Gateway, error) {
	var g *Gateway
	rc.Allow = func(a netip.Addr) bool { return g != nil && g.InTunnel(a) }
	rc.Egress = func(a netip.Addr) error {
		if g == nil {
			return netguard.ErrDenied
		}
		return g.PermitUpstream(a)
	}
	rc.BlockPolicy = func(a netip.Addr) []string {
		if g == nil {
			return nil
		}
		return g.BlockFor(a)
	}
	res, err := resolver.New(rc)
	if err != nil {
		return nil, fmt.Errorf("starting resolver: %w", err)
	}
	cfg.Resolver = res
	if cfg.DNSCertificate != nil {
		enc, err := res.Encrypted(resolver.EncryptedConfig{GetCertificate: cfg.DNSCertificate})
		if err != nil {
			return nil, fmt.Errorf("starting encrypted DNS: %w", err)
		}
		cfg.EncryptedDNS = enc
	}
	if cfg.Lookup == nil {
		cfg.Lookup = resolverLookup(res)
	}
	g, err = New(cfg)
	return g, err
}

// Ports of the encrypted DNS services on the tunnel addresses.
const (
	DoTPort = 853 // RFC 7858
	DoHPort = 443 // https://TUNNEL-ADDRESS/dns-query, RFC 8484
)

// EncryptedDNS serves DNS over TLS and HTTPS on listeners the gateway
// opens on its tunnel addresses; *resolver.Encrypted is one.
type EncryptedDNS interface {
	// ServeDoT answers DNS over TLS on ln until ctx is done.
	ServeDoT(ctx context.Context, ln net.Listener) error
	// ServeDoH answers DNS over HTTPS on ln until ctx is done.
	ServeDoH(ctx context.Context, ln net.Listener) error
}

var _ EncryptedDNS = (*resolver.Encrypted)(nil)

// streamServer runs one of EncryptedDNS's services as a dnsServer.
type streamServer struct {
	serve  func(context.Context, net.Listener) error
	ln     net.Listener
	ctx    context.Context
	cancel context.CancelFunc
}

func newStreamServer(serve func(context.Context, net.Listener) error, ln net.Listener) *streamServer {
	ctx, cancel := context.WithCancel(context.Background())
	return &streamServer{serve: serve, ln: ln, ctx: ctx, cancel: cancel}
}

func (s *streamServer) ActivateAndServe() error { return s.serve(s.ctx, s.ln) }

func (s *streamServer) Shutdown() error {
	s.cancel()
	return s.ln.Close()
}

// encryptedServers returns the DoT and DoH servers of e on the
// listeners listen opens on addr's DoTPort and DoHPort, or none when e
// is nil.
func encryptedServers(e EncryptedDNS, addr netip.Addr, listen func(netip.AddrPort) (net.Listener, error)) ([]dnsServer, error) {
	if e == nil {
		return nil, nil
	}
	dot, err := listen(netip.AddrPortFrom(addr, DoTPort))
	if err != nil {
		return nil, fmt.Errorf("DNS over TLS on tunnel address: %w", err)
	}
	doh, err := listen(netip.AddrPortFrom(addr, DoHPort))
	if err != nil {
		dot.Close()
		return nil, fmt.Errorf("DNS over HTTPS on tunnel address: %w", err)
	}
	return []dnsServer{newStreamServer(e.ServeDoT, dot), newStreamServer(e.ServeDoH, doh)}, nil
}

// DNSCertFiles returns Config.DNSCertificate for the PEM files cert and
// key (re-read when they change), or nil when both are empty, saying in
// the log that the tunnel addresses then serve plain DNS only. A gateway
// without a certificate of its own offers no DNS over TLS or HTTPS
// rather than a self-signed one that clients could not check.
func DNSCertFiles(cert, key string, log *slog.Logger) (func(*tls.ClientHelloInfo) (*tls.Certificate, error), error) {
	if cert == "" && key == "" {
		if log != nil {
			log.Info("DNS over TLS and HTTPS off on the tunnel addresses: no dns_tls_cert and dns_tls_key", "component", "gateway")
		}
		return nil, nil
	}
	f, err := certfile.Load(cert, key)
	if err != nil {
		return nil, fmt.Errorf("reading DNS certificate: %w", err)
	}
	return f.GetCertificate, nil
}

// errLookup is a name the resolver could not resolve; it carries neither
// the name nor the answer.
var errLookup = errors.New("name did not resolve")

// resolverLookup is a Config.Lookup that asks res for a name's IPv4 and
// IPv6 addresses, following the answer's CNAME records as the resolver
// returns them.
func resolverLookup(res *resolver.Resolver) func(context.Context, string) ([]netip.Addr, error) {
	return func(ctx context.Context, host string) ([]netip.Addr, error) {
		var out []netip.Addr
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			m, err := res.Resolve(ctx, host, qt)
			if err != nil || m.Rcode != dns.RcodeSuccess {
				continue
			}
			for _, rr := range m.Answer {
				switch rr := rr.(type) {
				case *dns.A:
					if a, ok := netip.AddrFromSlice(rr.A.To4()); ok {
						out = append(out, a)
					}
				case *dns.AAAA:
					if a, ok := netip.AddrFromSlice(rr.AAAA); ok {
						out = append(out, a)
					}
				}
			}
		}
		if len(out) == 0 {
			return nil, errLookup
		}
		return out, nil
	}
}

// lookup resolves host for the HTTPS proxy: with Config.Lookup, else
// the host's resolver.
func (g *Gateway) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if g.cfg.Lookup != nil {
		return g.cfg.Lookup(ctx, host)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return nil, errLookup
	}
	return addrs, nil
}

// isDenied reports whether err is the egress guard's refusal.
func isDenied(err error) bool { return errors.Is(err, netguard.ErrDenied) }
