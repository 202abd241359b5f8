// Package netguard is the one place that decides which destinations tunnel
// traffic and the outbound web tools (ping, whois, web proxy, speed test)
// may reach. It refuses the host's loopback, link-local and metadata
// addresses, private and special-purpose ranges and the tunnel pools,
// unless the operator allows a range.
//
// The decision is made on addresses, after name resolution, so a hostname
// that resolves to a private address is refused like the address itself:
//
//	g := netguard.Guard{Allow: cfg.EgressAllow}
//	client := &http.Client{Transport: &http.Transport{DialContext: g.DialContext}}
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// ErrDenied is returned (wrapped) for a destination the guard refuses.
var ErrDenied = errors.New("destination not allowed")

// Guard decides which destination addresses may be reached. The zero value
// refuses the special-purpose ranges of [Special] and allows everything
// else.
type Guard struct {
	// Allow lists ranges reachable although Special would refuse them
	// (the operator's --egress-allow; tests allow their own subnets).
	Allow []netip.Prefix
	// Deny lists ranges refused even when Allow covers them. The gateway
	// puts its tunnel pools here, so peers never reach one another and an
	// operator allowing 10.0.0.0/8 does not open the pool inside it.
	Deny []netip.Prefix
}

// special is the list behind Special; see there.
var special = []netip.Prefix{
	// IPv4.
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network", unspecified
	netip.MustParsePrefix("10.0.0.0/8"),      // RFC 1918
	netip.MustParsePrefix("100.64.0.0/10"),   // CGNAT, RFC 6598
	netip.MustParsePrefix("127.0.0.0/8"),     // loopback
	netip.MustParsePrefix("169.254.0.0/16"),  // link-local, cloud metadata
	netip.MustParsePrefix("172.16.0.0/12"),   // RFC 1918
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // TEST-NET-1
	netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast
	netip.MustParsePrefix("192.168.0.0/16"),  // RFC 1918
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // TEST-NET-2
	netip.MustParsePrefix("203.0.113.0/24"),  // TEST-NET-3
	netip.MustParsePrefix("224.0.0.0/4"),     // multicast
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("::/128"),          // unspecified
	netip.MustParsePrefix("::1/128"),         // loopback
	netip.MustParsePrefix("::ffff:0:0/96"),   // IPv4-mapped (checked unmapped first)
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64, may embed any IPv4
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("2002::/16"),       // 6to4, may embed any IPv4
	netip.MustParsePrefix("3fff::/20"),       // documentation, RFC 9637
	netip.MustParsePrefix("fc00::/7"),        // unique local
	netip.MustParsePrefix("fe80::/10"),       // link-local
	netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
	netip.MustParsePrefix("ff00::/8"),        // multicast
}

// Special returns the ranges refused unless allowed: loopback,
// link-local and metadata, private (RFC 1918, CGNAT, ULA), multicast,
// unspecified and broadcast, documentation and benchmarking ranges, and
// the translation prefixes (NAT64, 6to4) that can embed any IPv4 address;
// refusing those outright keeps the rule a plain list of prefixes that
// nftables can enforce in the same way. The caller may modify the result.
func Special() []netip.Prefix {
	return append([]netip.Prefix(nil), special...)
}

// Permit reports whether addr may be reached: nil if so, an error
// wrapping ErrDenied if not. Deny wins over Allow, Allow over Special.
func (g Guard) Permit(addr netip.Addr) error {
	if !addr.IsValid() {
		return fmt.Errorf("invalid address: %w", ErrDenied)
	}
	addr = addr.Unmap().WithZone("")
	for _, p := range g.Deny {
		if p.Contains(addr) {
			return fmt.Errorf("tunnel or operator-denied range: %w", ErrDenied)
		}
	}
	for _, p := range g.Allow {
		if p.Contains(addr) {
			return nil
		}
	}
	for _, p := range special {
		if p.Contains(addr) {
			return fmt.Errorf("private or special-purpose range: %w", ErrDenied)
		}
	}
	return nil
}

// Control checks the address a socket is about to connect to; it has the
// signature of net.Dialer.Control, which runs after name resolution, so
// every address a hostname resolves to is checked.
func (g Guard) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("parsing dial address: %w", err)
	}
	return g.Permit(ap.Addr())
}

// Dialer returns a copy of d (or of a zero net.Dialer if d is nil) whose
// connections are checked by the guard. An existing Control function of d
// still runs after the guard's check.
func (g Guard) Dialer(d *net.Dialer) *net.Dialer {
	var nd net.Dialer
	if d != nil {
		nd = *d
	}
	prev := nd.Control
	nd.ControlContext = nil
	nd.Control = func(network, address string, c syscall.RawConn) error {
		if err := g.Control(network, address, c); err != nil {
			return err
		}
		if prev != nil {
			return prev(network, address, c)
		}
		return nil
	}
	return &nd
}

// DialContext dials like net.Dialer.DialContext, refusing destinations the
// guard does not permit. It fits http.Transport.DialContext.
func (g Guard) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return g.Dialer(nil).DialContext(ctx, network, address)
}
