package service

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"veil/internal/certfile"
	"veil/internal/config"
	"veil/internal/netguard"
	"veil/internal/resolver"
)

// PublicDNS is the bound addresses of the public DNS over TLS and HTTPS
// service; nil when it is off, and a nil field for a protocol turned off.
type PublicDNS struct {
	TLS, HTTPS net.Addr
}

// startPublicDNS runs the public DNS over TLS and HTTPS service: a
// resolver of its own, open to anyone but only over TLS (no UDP, so no
// reflection), rate-limited per client in memory, reaching upstream
// servers only where the egress guard lets it, with the blocking
// categories each client names by host name or path.
func (s *Service) startPublicDNS(ctx context.Context) error {
	cfg := s.Config
	lists, err := config.ParseBlocklists(cfg.DNSBlocklists)
	if err != nil {
		return err
	}
	cert, err := certfile.Load(cfg.PublicDNSCert, cfg.PublicDNSKey)
	if err != nil {
		return fmt.Errorf("reading DNS certificate: %w", err)
	}
	guard := netguard.Guard{Allow: cfg.EgressPrefixes(), Deny: []netip.Prefix{s.pools.V4, s.pools.V6}}
	res, err := resolver.New(resolver.Config{
		RootHints:     cfg.DNSRootHints,
		Port:          cfg.DNSUpstreamPort,
		Forward:       cfg.DNSForward,
		TrustAnchor:   cfg.DNSTrustAnchor,
		DisableDNSSEC: !cfg.DNSValidate,
		Blocklists:    lists,
		Egress:        guard.Permit,
		Allow:         func(netip.Addr) bool { return true },
		RateLimit:     cfg.PublicDNSRateLimit,
		Logger:        s.log, // the resolver adds its own component attribute
	})
	if err != nil {
		return fmt.Errorf("starting the public DNS resolver: %w", err)
	}
	enc, err := res.Encrypted(resolver.EncryptedConfig{
		GetCertificate: cert.GetCertificate,
		Public:         true,
		Domain:         cfg.PublicDNSDomainName(),
	})
	if err != nil {
		return err
	}
	s.PublicDNS = &PublicDNS{}
	for _, l := range []struct {
		key, addr string
		bound     *net.Addr
		serve     func(context.Context, net.Listener) error
	}{
		{"public_dns_tls_addr", cfg.PublicDNSTLSAddr, &s.PublicDNS.TLS, enc.ServeDoT},
		{"public_dns_https_addr", cfg.PublicDNSHTTPSAddr, &s.PublicDNS.HTTPS, enc.ServeDoH},
	} {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return fmt.Errorf("listening on %s (%s): %w", l.addr, l.key, err)
		}
		*l.bound = ln.Addr()
		serve := l.serve
		s.goRun(func() error {
			if err := serve(ctx, ln); err != nil {
				return fmt.Errorf("public DNS: %w", err)
			}
			return nil
		})
	}
	s.log.Info("public DNS over TLS and HTTPS on", "domain", cfg.PublicDNSDomainName())
	return nil
}
