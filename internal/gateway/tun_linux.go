package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"veil/internal/netguard"
	"veil/internal/pq"
	"veil/internal/transport"
	"veil/internal/wg"
)

// Forwarding switches, per network namespace.
const (
	forward4 = "/proc/sys/net/ipv4/ip_forward"
	forward6 = "/proc/sys/net/ipv6/conf/all/forwarding"
)

// tunPlane runs the tunnel on a kernel TUN: the kernel forwards, an
// nftables table of the gateway's own enforces the egress guard and
// masquerades the pools, and the resolver listens on the TUN addresses.
type tunPlane struct {
	g     *Gateway
	name  string
	table *nftables.Table

	mu       sync.Mutex
	restore  map[string]string // sysctl files to put back
	dns      []dnsServer
	wg       sync.WaitGroup
	started  bool
	stopping bool
}

func newTUNPlane(g *Gateway) (dataPlane, tunDevice, error) {
	name := g.cfg.TUNName
	t, err := wg.CreateTUN(name, wg.DefaultMTU)
	if err != nil {
		return nil, nil, err
	}
	if real, err := t.Name(); err == nil {
		name = real
	}
	p := &tunPlane{
		g:       g,
		name:    name,
		table:   &nftables.Table{Name: "veil-gw-" + name, Family: nftables.TableFamilyINet},
		restore: make(map[string]string),
	}
	return p, t, nil
}

func (p *tunPlane) start(ctx context.Context, tc tunnelConfig) error {
	link, err := netlink.LinkByName(p.name)
	if err != nil {
		return fmt.Errorf("finding %s: %w", p.name, err)
	}
	for _, a := range tc.addrs {
		addr := &netlink.Addr{IPNet: prefixNet(a)}
		if a.Addr().Is6() {
			// No duplicate address detection: the address is ours alone
			// and the resolver must bind it at once.
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrReplace(link, addr); err != nil {
			return fmt.Errorf("adding tunnel address to %s: %w", p.name, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("bringing %s up: %w", p.name, err)
	}
	p.mu.Lock()
	p.started = true
	p.mu.Unlock()
	for _, f := range []string{forward4, forward6} {
		if err := p.enable(f); err != nil {
			return err
		}
	}
	if err := p.installRules(tc); err != nil {
		return err
	}
	if p.g.cfg.Resolver != nil {
		for _, a := range tc.addrs {
			if err := p.serveDNS(netip.AddrPortFrom(a.Addr(), 53)); err != nil {
				return err
			}
		}
	}
	return nil
}

// enable writes 1 to a sysctl file, remembering the old value.
func (p *tunPlane) enable(file string) error {
	old, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("reading %s: %w", file, err)
	}
	if strings.TrimSpace(string(old)) == "1" {
		return nil
	}
	if err := os.WriteFile(file, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("enabling forwarding: %w", err)
	}
	p.mu.Lock()
	p.restore[file] = string(old)
	p.mu.Unlock()
	return nil
}

func (p *tunPlane) listen(ap netip.AddrPort) (net.Listener, error) {
	return net.Listen("tcp", ap.String())
}

func (p *tunPlane) serveDNS(ap netip.AddrPort) error {
	pc, err := net.ListenPacket("udp", ap.String())
	if err != nil {
		return fmt.Errorf("resolver on tunnel address: %w", err)
	}
	ln, err := net.Listen("tcp", ap.String())
	if err != nil {
		pc.Close()
		return fmt.Errorf("resolver on tunnel address: %w", err)
	}
	// DNS over HTTPS shares port 443 with WireGuard over TLS on every
	// address; the kernel gives it the connections to the tunnel address.
	enc, err := encryptedServers(p.g.cfg.EncryptedDNS, ap.Addr(), func(ap netip.AddrPort) (net.Listener, error) { return transport.ListenShared(ap.String()) })
	if err != nil {
		pc.Close()
		ln.Close()
		return err
	}
	for _, srv := range append(dnsServers(p.g.cfg.Resolver, pc, ln), enc...) {
		p.mu.Lock()
		if p.stopping {
			p.mu.Unlock()
			pc.Close()
			ln.Close()
			for _, s := range enc {
				s.Shutdown()
			}
			return nil
		}
		p.dns = append(p.dns, srv)
		p.wg.Add(1)
		p.mu.Unlock()
		go func() {
			defer p.wg.Done()
			srv.ActivateAndServe()
		}()
	}
	return nil
}

// installRules replaces the gateway's nftables table in one transaction.
func (p *tunPlane) installRules(tc tunnelConfig) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	defer c.CloseLasting()
	// Add then delete then add: clears a table left by a killed gateway
	// without failing when there is none.
	c.AddTable(p.table)
	c.DelTable(p.table)
	t := c.AddTable(p.table)
	buildRules(c, t, p.name, tc, p.g.cfg.EgressAllow, p.g.cfg.EncryptedDNS != nil)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("installing nftables rules: %w", err)
	}
	return nil
}

// buildRules queues the gateway's chains: the egress guard on forwarded
// traffic from the tunnel, the host closed to peers but for DNS and ping,
// masquerade of the pools, and TCP MSS clamped to the route MTU.
func buildRules(c *nftables.Conn, t *nftables.Table, tun string, tc tunnelConfig, allow []netip.Prefix, encryptedDNS bool) {
	accept := policy(nftables.ChainPolicyAccept)
	fwd := c.AddChain(&nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: accept})
	in := c.AddChain(&nftables.Chain{Name: "input", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: accept})
	nat := c.AddChain(&nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: accept})
	rule := func(ch *nftables.Chain, e ...[]expr.Any) {
		var all []expr.Any
		for _, x := range e {
			all = append(all, x...)
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: all})
	}

	// Forward: packets of flows already admitted pass at once, so only a
	// flow's first packet walks the guard below (it runs for every
	// packet otherwise: bench/tunnel). A refused first packet never makes
	// a confirmed conntrack entry, and a flow's destination cannot change.
	rule(fwd, ctEstablished(), verdict(expr.VerdictAccept))
	// Then the guard's decision as first-match ranges (netguard's
	// Rules, which decide as Guard.Permit does): deny (pools) beats allow
	// beats the special ranges. A refused flow is answered (a TCP
	// reset, else ICMP administratively prohibited), as the netstack
	// gateway answers, so that the peer's application fails at once
	// instead of waiting for a timeout.
	refuse := c.AddChain(&nftables.Chain{Name: "refuse", Table: t})
	rule(refuse, l4proto(unix.IPPROTO_TCP), []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_TCP_RST}})
	rule(refuse, []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_ADMIN_PROHIBITED}})
	toRefuse := []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: refuse.Name}}
	rule(fwd, ifname(expr.MetaKeyIIFNAME, tun), ifname(expr.MetaKeyOIFNAME, tun), toRefuse)
	for _, r := range (netguard.Guard{Allow: allow, Deny: tc.pools}).Rules() {
		then := toRefuse
		if r.Permit {
			then = verdict(expr.VerdictAccept)
		}
		rule(fwd, ifname(expr.MetaKeyIIFNAME, tun), addrMatch(r.Prefix, false), then)
	}
	rule(fwd, ifname(expr.MetaKeyIIFNAME, tun), verdict(expr.VerdictAccept))
	rule(fwd, ifname(expr.MetaKeyOIFNAME, tun), verdict(expr.VerdictDrop))

	// Input from peers: answers, DNS on the gateway's own addresses (and
	// DNS over TLS and HTTPS when served), and
	// ICMP (ping, neighbour discovery); nothing else of the host.
	rule(in, ifname(expr.MetaKeyIIFNAME, tun), ctEstablished(), verdict(expr.VerdictAccept))
	for _, a := range tc.addrs {
		own := netip.PrefixFrom(a.Addr(), a.Addr().BitLen())
		for _, proto := range []byte{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
			rule(in, ifname(expr.MetaKeyIIFNAME, tun), addrMatch(own, false), l4proto(proto), dport(53), verdict(expr.VerdictAccept))
		}
		if encryptedDNS {
			for _, port := range []uint16{DoTPort, DoHPort} {
				rule(in, ifname(expr.MetaKeyIIFNAME, tun), addrMatch(own, false), l4proto(unix.IPPROTO_TCP), dport(port), verdict(expr.VerdictAccept))
			}
		}
		// The post-quantum key exchange knows a peer by its source
		// address, which only the tunnel vouches for: refused from any
		// other interface.
		rule(in, ifname(expr.MetaKeyIIFNAME, tun), addrMatch(own, false), l4proto(unix.IPPROTO_TCP), dport(pq.Port), verdict(expr.VerdictAccept))
		rule(in, ifnameNot(expr.MetaKeyIIFNAME, tun), addrMatch(own, false), l4proto(unix.IPPROTO_TCP), dport(pq.Port), verdict(expr.VerdictDrop))
	}
	rule(in, ifname(expr.MetaKeyIIFNAME, tun), l4proto(unix.IPPROTO_ICMP), verdict(expr.VerdictAccept))
	rule(in, ifname(expr.MetaKeyIIFNAME, tun), l4proto(unix.IPPROTO_ICMPV6), verdict(expr.VerdictAccept))
	rule(in, ifname(expr.MetaKeyIIFNAME, tun), verdict(expr.VerdictDrop))

	// Masquerade the pools out of every other interface.
	for _, pool := range tc.pools {
		rule(nat, addrMatch(pool, true), ifnameNot(expr.MetaKeyOIFNAME, tun), []expr.Any{&expr.Masq{}})
	}

	// MSS clamping, before the filter chains: a path with a smaller MTU
	// than the tunnel's, where ICMP is dropped, would stall TCP.
	mss := c.AddChain(&nftables.Chain{Name: "mss", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityMangle, Policy: accept})
	for _, e := range mssClamp(tun) {
		rule(mss, e)
	}
}

// mssClamp is, for TCP SYN and SYN-ACK packets entering or leaving the
// tunnel interface, `tcp option maxseg size set rt mtu`: the MSS option
// lowered to the route's MTU less the IP and TCP headers (the kernel
// never raises it).
func mssClamp(tun string) [][]expr.Any {
	var rules [][]expr.Any
	for _, key := range []expr.MetaKey{expr.MetaKeyIIFNAME, expr.MetaKeyOIFNAME} {
		var e []expr.Any
		e = append(e, ifname(key, tun)...)
		e = append(e, l4proto(unix.IPPROTO_TCP)...)
		e = append(e,
			// tcp flags syn: the flags byte at offset 13.
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{tcpFlagSYN}, Xor: []byte{0}},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0}},
			// rt mtu, in network order, written to the maxseg option's
			// size (kind 2, two bytes at offset 2).
			&expr.Rt{Register: 1, Key: expr.RtTCPMSS},
			&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 2, Size: 2},
			&expr.Exthdr{SourceRegister: 1, Type: tcpOptMaxSeg, Offset: 2, Len: 2, Op: expr.ExthdrOpTcpopt},
		)
		rules = append(rules, e)
	}
	return rules
}

const (
	tcpFlagSYN   = 0x02
	tcpOptMaxSeg = 2
)

func policy(p nftables.ChainPolicy) *nftables.ChainPolicy { return &p }

func verdict(k expr.VerdictKind) []expr.Any { return []expr.Any{&expr.Verdict{Kind: k}} }

func ifnameBytes(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

func ifname(key expr.MetaKey, name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifnameBytes(name)},
	}
}

func ifnameNot(key expr.MetaKey, name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifnameBytes(name)},
	}
}

// addrMatch matches the destination (or source) address against p,
// checking the family first as an inet table must.
func addrMatch(p netip.Prefix, source bool) []expr.Any {
	p = p.Masked()
	fam, off := byte(unix.NFPROTO_IPV4), uint32(16)
	if source {
		off = 12
	}
	if p.Addr().Is6() {
		fam, off = unix.NFPROTO_IPV6, 24
		if source {
			off = 8
		}
	}
	n := uint32(p.Addr().BitLen() / 8)
	mask := net.CIDRMask(p.Bits(), p.Addr().BitLen())
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{fam}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: mask, Xor: make([]byte, n)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Addr().AsSlice()},
	}
}

func l4proto(proto byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
	}
}

func dport(port uint16) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
	}
}

func ctEstablished() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED),
			Xor:  binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// close removes the rules, stops DNS and restores the sysctls. The TUN
// itself goes with the WireGuard device, which owns it.
func (p *tunPlane) close() error {
	p.mu.Lock()
	p.stopping = true
	servers := p.dns
	started := p.started
	restore := p.restore
	p.restore = nil
	p.mu.Unlock()
	for _, s := range servers {
		s.Shutdown()
	}
	p.wg.Wait()
	var errs []error
	if started {
		c, err := nftables.New()
		if err == nil {
			// Add then delete: succeeds whether or not the table exists.
			c.AddTable(p.table)
			c.DelTable(p.table)
			err = c.Flush()
			c.CloseLasting()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("removing nftables table: %w", err))
		}
	}
	for f, v := range restore {
		if err := os.WriteFile(f, []byte(v), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restoring %s: %w", f, err))
		}
	}
	return errors.Join(errs...)
}
