package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/miekg/dns"

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
	if cfg.Lookup == nil {
		cfg.Lookup = resolverLookup(res)
	}
	g, err = New(cfg)
	return g, err
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
