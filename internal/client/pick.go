package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"veil/internal/apitypes"
)

// ErrNoServer is returned when no online gateway matches a location.
var ErrNoServer = errors.New("no online gateway")

// PickServer chooses, among the online gateways that match location, the
// one with the lowest load (ties broken by name, so the choice is stable).
// location is a country code ("se"), a location ("se-sto") or a gateway
// name, compared without regard to case; empty matches every gateway.
func PickServer(servers []apitypes.Server, location string) (apitypes.Server, error) {
	loc := strings.ToLower(strings.TrimSpace(location))
	var match []apitypes.Server
	for _, s := range servers {
		if !s.Online || s.PublicKey == "" {
			continue
		}
		if loc == "" || strings.ToLower(s.Country) == loc ||
			strings.ToLower(s.Location) == loc || strings.ToLower(s.Name) == loc {
			match = append(match, s)
		}
	}
	if len(match) == 0 {
		if loc == "" {
			return apitypes.Server{}, fmt.Errorf("%w is listed", ErrNoServer)
		}
		return apitypes.Server{}, fmt.Errorf("%w matches %q (see `veil servers`)", ErrNoServer, location)
	}
	slices.SortFunc(match, func(a, b apitypes.Server) int {
		return cmp.Or(cmp.Compare(a.Load, b.Load), cmp.Compare(a.Name, b.Name))
	})
	return match[0], nil
}

// parseAddr reads an address written alone or with a prefix length, as the
// API writes tunnel addresses ("10.64.0.2/32", "10.64.0.1").
func parseAddr(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, errors.New("empty address")
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Addr(), nil
	}
	return netip.ParseAddr(s)
}

// parseHostPrefix reads a device address as a host prefix (/32 or /128).
func parseHostPrefix(s string) (netip.Prefix, error) {
	a, err := parseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// serverEndpoint finds where to reach s: its endpoint if that is an
// address, else an address the control plane resolved the endpoint's name
// to, else, if system, the system resolver's answer for the name. Behind
// a kill switch or a tunnel the system resolver may not answer, so the
// control plane's addresses come first.
func serverEndpoint(ctx context.Context, s apitypes.Server, system bool) (netip.AddrPort, error) {
	for _, ep := range append([]string{s.Endpoint}, s.EndpointAddrs...) {
		if ap, err := netip.ParseAddrPort(ep); err == nil {
			return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
		}
	}
	if !system {
		return netip.AddrPort{}, errors.New("the endpoint is a name the control plane did not resolve")
	}
	host, port, err := net.SplitHostPort(s.Endpoint)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("gateway endpoint is not HOST:PORT: %w", err)
	}
	p, err := net.LookupPort("udp", port)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("gateway endpoint port: %w", err)
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return netip.AddrPort{}, fmt.Errorf("cannot resolve the gateway's endpoint: %w", err)
	}
	return netip.AddrPortFrom(ips[0].Unmap(), uint16(p)), nil
}
