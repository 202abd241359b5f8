package gateway

import (
	"fmt"
	"net/netip"

	"veil/internal/netguard"
	"veil/internal/resolver"
)

// NewWithResolver creates a gateway that serves a no-log resolver, built
// from rc, on its tunnel addresses. The resolver answers the gateway's
// peers only: rc.Allow is replaced by a check that the source is inside
// the tunnel pools, which the gateway learns from the control plane, and
// rc.BlockPolicy by each peer's blocking categories from the peer map, and
// rc.Egress by the gateway's egress guard, so that no delegation can point
// the resolver at the host, a private network or another peer.
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
	g, err = New(cfg)
	return g, err
}
