// Package netguard is the one place that decides which destinations tunnel
// traffic and the outbound web tools (ping, whois, web proxy, speed test)
// may reach. It refuses the host's loopback, link-local and metadata
// addresses, private and special-purpose ranges and the tunnel pools,
// unless the operator allows a range. An IPv6 address that carries an IPv4
// address (IPv4-mapped or -compatible, NAT64, 6to4) is judged as that IPv4
// address.
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

// special lists the ranges refused unless allowed. An address of an
// embedding range (see embeds) is judged by the IPv4 address it holds, so
// those ranges are not listed here.
var special = []netip.Prefix{
	// IPv4.
	netip.MustParsePrefix("0.0.0.0/8"),        // "this network", unspecified
	netip.MustParsePrefix("10.0.0.0/8"),       // RFC 1918
	netip.MustParsePrefix("100.64.0.0/10"),    // CGNAT, RFC 6598
	netip.MustParsePrefix("127.0.0.0/8"),      // loopback
	netip.MustParsePrefix("168.63.129.16/32"), // a cloud's wire server (host agent, DHCP, DNS)
	netip.MustParsePrefix("169.254.0.0/16"),   // link-local, cloud metadata
	netip.MustParsePrefix("172.16.0.0/12"),    // RFC 1918
	netip.MustParsePrefix("192.0.0.0/24"),     // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),     // TEST-NET-1
	netip.MustParsePrefix("192.88.99.0/24"),   // 6to4 relay anycast
	netip.MustParsePrefix("192.168.0.0/16"),   // RFC 1918
	netip.MustParsePrefix("198.18.0.0/15"),    // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"),  // TEST-NET-2
	netip.MustParsePrefix("203.0.113.0/24"),   // TEST-NET-3
	netip.MustParsePrefix("224.0.0.0/4"),      // multicast
	netip.MustParsePrefix("240.0.0.0/4"),      // reserved, broadcast
	// IPv6.
	netip.MustParsePrefix("::/128"),         // unspecified
	netip.MustParsePrefix("::1/128"),        // loopback
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64, its IPv4 at a prefix-dependent place
	netip.MustParsePrefix("100::/64"),       // discard-only
	netip.MustParsePrefix("2001::/32"),      // Teredo, an obfuscated IPv4 client inside
	netip.MustParsePrefix("2001:db8::/32"),  // documentation
	netip.MustParsePrefix("3fff::/20"),      // documentation, RFC 9637
	netip.MustParsePrefix("fc00::/7"),       // unique local
	netip.MustParsePrefix("fe80::/10"),      // link-local
	netip.MustParsePrefix("fec0::/10"),      // site-local (deprecated)
	netip.MustParsePrefix("ff00::/8"),       // multicast
}

// embed is an IPv6 range whose addresses carry an IPv4 address at byte
// offset off, which is where they lead: the host's own IPv4 stack for
// mapped and compatible addresses, a translator or relay for the others.
type embed struct {
	prefix netip.Prefix
	off    int
}

var embeds = []embed{
	{netip.MustParsePrefix("::ffff:0:0/96"), 12}, // IPv4-mapped
	{netip.MustParsePrefix("::/96"), 12},         // IPv4-compatible (deprecated); not :: and ::1
	{netip.MustParsePrefix("64:ff9b::/96"), 12},  // NAT64 well-known prefix, RFC 6052
	{netip.MustParsePrefix("2002::/16"), 2},      // 6to4, RFC 3056
}

// Embedded returns the IPv4 address an IPv6 address carries (IPv4-mapped,
// IPv4-compatible, NAT64 64:ff9b::/96, 6to4 2002::/16), and whether it
// carries one. The guard judges such an address as that IPv4 address.
func Embedded(addr netip.Addr) (netip.Addr, bool) {
	if !addr.Is6() {
		return netip.Addr{}, false
	}
	addr = addr.WithZone("")
	if addr == netip.IPv6Unspecified() || addr == netip.IPv6Loopback() {
		return netip.Addr{}, false
	}
	b := addr.As16()
	for _, e := range embeds {
		if e.prefix.Contains(addr) {
			return netip.AddrFrom4([4]byte(b[e.off : e.off+4])), true
		}
	}
	return netip.Addr{}, false
}

// EmbeddingRanges returns the IPv6 ranges whose addresses Embedded reads
// an IPv4 address from. (Of ::/96, :: and ::1 embed nothing.)
func EmbeddingRanges() []netip.Prefix {
	out := make([]netip.Prefix, len(embeds))
	for i, e := range embeds {
		out[i] = e.prefix
	}
	return out
}

// forms returns p and, for an IPv4 range, the same range inside each
// embedding range (10.0.0.0/8 is also 64:ff9b::a00:0/104, and so on).
func forms(p netip.Prefix) []netip.Prefix {
	p = p.Masked()
	out := []netip.Prefix{p}
	if !p.Addr().Is4() {
		return out
	}
	v4 := p.Addr().As4()
	for _, e := range embeds {
		b := e.prefix.Addr().As16()
		copy(b[e.off:], v4[:])
		out = append(out, netip.PrefixFrom(netip.AddrFrom16(b), e.prefix.Bits()+p.Bits()).Masked())
	}
	return out
}

// Special returns the ranges refused unless allowed: loopback,
// link-local and metadata, private (RFC 1918, CGNAT, ULA), multicast,
// unspecified and broadcast, documentation and benchmarking ranges, and
// each IPv4 one of these inside the IPv6 ranges that embed an IPv4
// address (mapped, compatible, NAT64, 6to4). The caller may modify the
// result.
func Special() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range special {
		out = append(out, forms(p)...)
	}
	return out
}

// Permit reports whether addr may be reached: nil if so, an error
// wrapping ErrDenied if not. Deny wins over Allow, Allow over Special.
// An address that embeds an IPv4 address is judged as that address, so
// that 64:ff9b::7f00:1 is refused as 127.0.0.1 is, and allowed where it is;
// Deny also refuses it when it covers the IPv6 address itself.
func (g Guard) Permit(addr netip.Addr) error {
	if !addr.IsValid() {
		return fmt.Errorf("invalid address: %w", ErrDenied)
	}
	addr = addr.WithZone("")
	judged := addr
	if v4, ok := Embedded(addr); ok {
		judged = v4
	}
	for _, p := range g.Deny {
		if p.Contains(addr) || p.Contains(judged) {
			return fmt.Errorf("tunnel or operator-denied range: %w", ErrDenied)
		}
	}
	for _, p := range g.Allow {
		if p.Contains(judged) {
			return nil
		}
	}
	for _, p := range special {
		if p.Contains(judged) {
			return fmt.Errorf("private or special-purpose range: %w", ErrDenied)
		}
	}
	return nil
}

// Rule is one line of the guard's decision written as ranges, for a packet
// filter: the first rule whose Prefix holds a destination decides, and a
// destination no rule holds is permitted.
type Rule struct {
	Prefix netip.Prefix
	Permit bool
}

// Rules returns the guard's decision as a first-match list of ranges that
// decides every address as Permit does (the tun gateway's nftables
// enforce it). Its order follows Permit's: deny, allow, special, with the
// embedding ranges placed so that an operator's IPv6 range never opens the
// IPv4 addresses embedded in it.
func (g Guard) Rules() []Rule {
	var out []Rule
	add := func(permit bool, ps ...netip.Prefix) {
		for _, p := range ps {
			out = append(out, Rule{Prefix: p.Masked(), Permit: permit})
		}
	}
	// :: and ::1 lie inside ::/96 but embed nothing; decided one by one.
	for _, a := range []netip.Addr{netip.IPv6Unspecified(), netip.IPv6Loopback()} {
		add(g.Permit(a) == nil, netip.PrefixFrom(a, 128))
	}
	for _, p := range g.Deny {
		add(false, forms(p)...)
	}
	for _, p := range g.Allow {
		if p.Addr().Is4() {
			add(true, forms(p)...)
		}
	}
	for _, p := range special {
		if p.Addr().Is4() {
			add(false, forms(p)...)
		}
	}
	// What is left of the embedding ranges holds public IPv4 addresses.
	for _, e := range embeds {
		add(true, e.prefix)
	}
	for _, p := range g.Allow {
		if p.Addr().Is6() {
			add(true, p)
		}
	}
	for _, p := range special {
		if p.Addr().Is6() {
			add(false, p)
		}
	}
	return out
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
