package client

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// KillSwitchTable is the nftables table (family inet) that holds the kill
// switch. Veil owns it alone: nothing else is touched.
const KillSwitchTable = "veil"

// killSwitchRules is what the kill switch lets out besides the tunnel
// interface, loopback, DHCP and neighbour discovery.
type killSwitchRules struct {
	// Endpoints are the gateway's WireGuard endpoints (UDP). While the
	// gateway moves there are two: the old and the new.
	Endpoints []netip.AddrPort
	// TCP are the gateway's TLS endpoints, let out like Endpoints.
	TCP []netip.AddrPort
	// API are the control plane's addresses (TCP), let out only for
	// sockets carrying Mark: the holding process's own, while it looks
	// for the gateway's new key or endpoint. Empty the rest of the time.
	API  []netip.AddrPort
	Mark uint32
	// Portal, while open, lets out what a captive portal needs: TCP 80
	// and 443, and DNS to the LAN's resolvers, with their answers.
	Portal portalWindow
}

// installKillSwitch replaces the kill switch table with one that lets out
// only the tunnel interface, the UDP flows to the gateway endpoints,
// loopback, DHCP and neighbour discovery, and, when asked, the marked TCP
// flows to the control plane; inbound, the same and the answers of those
// flows. Everything, including the removal of an
// earlier table, is one transaction (one netlink batch): there is no
// moment with half the rules, and replacing one endpoint by another never
// lets anything else out.
func installKillSwitch(iface string, ks killSwitchRules) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("kill switch: %w", err)
	}
	t := &nftables.Table{Name: KillSwitchTable, Family: nftables.TableFamilyINet}
	// Add then delete: removes an earlier table without failing when
	// there is none, inside the same batch.
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	drop := nftables.ChainPolicyDrop
	chain := func(name string, hook *nftables.ChainHook) *nftables.Chain {
		return c.AddChain(&nftables.Chain{
			Name: name, Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: hook, Priority: nftables.ChainPriorityFilter, Policy: &drop,
		})
	}
	out := chain("output", nftables.ChainHookOutput)
	in := chain("input", nftables.ChainHookInput)
	fwd := chain("forward", nftables.ChainHookForward)
	rule := func(ch *nftables.Chain, exprs ...expr.Any) {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: append(exprs, accept())})
	}

	rule(out, ifname(expr.MetaKeyOIFNAME, "lo")...)
	rule(out, ifname(expr.MetaKeyOIFNAME, iface)...)
	for _, ep := range ks.Endpoints {
		rule(out, flow(unix.IPPROTO_UDP, ep, to)...)
	}
	for _, ep := range ks.TCP {
		rule(out, flow(unix.IPPROTO_TCP, ep, to)...)
	}
	for _, ap := range ks.API {
		rule(out, append(markIs(ks.Mark), flow(unix.IPPROTO_TCP, ap, to)...)...)
	}
	rule(out, udpPort(false, 67)...)  // DHCP client to server
	rule(out, udpPort(false, 547)...) // DHCPv6
	rule(out, ndp()...)

	rule(in, ifname(expr.MetaKeyIIFNAME, "lo")...)
	rule(in, ifname(expr.MetaKeyIIFNAME, iface)...)
	// The answers of the flows let out above, matched by address and
	// port rather than by connection state: a ct expression would turn
	// on connection tracking for every packet of the host, the tunnel's
	// own included, and cost a tenth of its UDP throughput.
	for _, ep := range ks.Endpoints {
		rule(in, flow(unix.IPPROTO_UDP, ep, from)...)
	}
	for _, ep := range ks.TCP {
		rule(in, flow(unix.IPPROTO_TCP, ep, from)...)
	}
	for _, ap := range ks.API {
		rule(in, flow(unix.IPPROTO_TCP, ap, from)...)
	}
	rule(in, udpPort(true, 67)...)  // DHCP server replies, often broadcast
	rule(in, udpPort(true, 547)...) // DHCPv6
	rule(in, ndp()...)

	rule(fwd, ifname(expr.MetaKeyOIFNAME, iface)...)
	rule(fwd, ifname(expr.MetaKeyIIFNAME, iface)...)
	if err := addPortalRules(c, t, out, in, ks.Portal); err != nil {
		return err
	}

	if err := c.Flush(); err != nil {
		return fmt.Errorf("installing the kill switch (nftables): %w", err)
	}
	return nil
}

// removeKillSwitch deletes the table; a missing table is not an error.
func removeKillSwitch() error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("kill switch: %w", err)
	}
	t := &nftables.Table{Name: KillSwitchTable, Family: nftables.TableFamilyINet}
	c.AddTable(t)
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("removing the kill switch (nftables): %w", err)
	}
	return nil
}

func accept() expr.Any { return &expr.Verdict{Kind: expr.VerdictAccept} }

func ifname(key expr.MetaKey, name string) []expr.Any {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b},
	}
}

func l4(proto byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
	}
}

func nfproto(v6 bool) []expr.Any {
	p := byte(unix.NFPROTO_IPV4)
	if v6 {
		p = unix.NFPROTO_IPV6
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
	}
}

// markIs matches packets of sockets carrying mark (SO_MARK, which only a
// process with CAP_NET_ADMIN can set).
func markIs(mark uint32) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(mark)},
	}
}

// Directions of a flow.
const (
	to   = false
	from = true
)

// flow matches UDP or TCP (proto) to ep, or from ep if dir is from: the
// WireGuard flow, or the control plane.
func flow(proto byte, ep netip.AddrPort, dir bool) []expr.Any {
	ip := ep.Addr().Unmap()
	off, l := uint32(16), uint32(4) // IPv4 destination
	if ip.Is6() {
		off, l = 24, 16
	}
	portOff := uint32(2)
	if dir == from {
		off -= l // the source address comes right before the destination
		portOff = 0
	}
	e := nfproto(ip.Is6())
	e = append(e,
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: l},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ip.AsSlice()},
	)
	e = append(e, l4(proto)...)
	return append(e,
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: portOff, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(ep.Port())},
	)
}

// udpPort matches UDP by destination port, or by source port if src.
func udpPort(src bool, port uint16) []expr.Any {
	off := uint32(2)
	if src {
		off = 0
	}
	return append(l4(unix.IPPROTO_UDP),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
	)
}

// ndp matches router and neighbour solicitations and advertisements
// (ICMPv6 types 133 to 136), without which IPv6 cannot reach the gateway.
func ndp() []expr.Any {
	e := nfproto(true)
	e = append(e, l4(unix.IPPROTO_ICMPV6)...)
	return append(e,
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		&expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: []byte{133}, ToData: []byte{136}},
	)
}
