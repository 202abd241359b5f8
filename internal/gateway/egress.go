package gateway

import (
	"net"
	"net/netip"
)

// egress returns the addresses to report as this gateway's egress: the
// configured ones, or else the host's source addresses for the internet.
func (g *Gateway) egress() []string {
	addrs := g.cfg.Egress
	if len(addrs) == 0 {
		addrs = hostEgress()
	}
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}

// hostEgress returns the source addresses the host picks for the
// internet, IPv4 and IPv6, where they are public: an address behind NAT
// says nothing about where traffic appears (set Config.Egress there).
// Connecting a UDP socket only chooses a route; nothing is sent.
func hostEgress() []netip.Addr {
	var out []netip.Addr
	for _, probe := range []string{"192.0.2.1:9", "[2001:db8::1]:9"} {
		c, err := net.Dial("udp", probe)
		if err != nil {
			continue // no route for that family
		}
		ap, err := netip.ParseAddrPort(c.LocalAddr().String())
		c.Close()
		if a := ap.Addr().Unmap(); err == nil && public(a) {
			out = append(out, a)
		}
	}
	return out
}

// cgnat is the shared address space of RFC 6598, behind carrier NAT.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

func public(a netip.Addr) bool {
	return a.IsGlobalUnicast() && !a.IsPrivate() && !cgnat.Contains(a)
}
