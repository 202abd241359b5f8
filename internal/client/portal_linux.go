package client

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// prioPortal is the priority of the routing rules that, while a portal
// window is open, send HTTP, HTTPS and DNS to the LAN's resolvers by the
// normal routes instead of the tunnel: ahead of prioTunnel, so that the
// sockets take the LAN's source address from the start.
const prioPortal = 32763

// The kill switch's portal sets. Their elements carry the window's end as
// an nftables timeout: the kernel drops them when it comes, whether or
// not the process that opened the window is still alive.
const (
	portalTCPSet  = "portal_tcp"
	portalDNS4Set = "portal_dns4"
	portalDNS6Set = "portal_dns6"
)

// portalPorts are the TCP ports a captive portal's pages need.
var portalPorts = []uint16{80, 443}

// portalWindow is an open portal window: until when, and the LAN's
// resolvers that DNS may reach meanwhile.
type portalWindow struct {
	Until time.Time
	DNS   []netip.Addr
}

// addPortalRules adds to the kill switch table t, while w is open, the
// portal sets with their elements, which expire at its end, and the
// rules of out and in that accept what they hold: TCP to the portal
// ports and DNS to the LAN's resolvers, and their answers. A closed
// window adds nothing: the kill switch is as tight as without one.
func addPortalRules(c *nftables.Conn, t *nftables.Table, out, in *nftables.Chain, w portalWindow) error {
	left := time.Until(w.Until)
	if left < time.Millisecond {
		return nil
	}
	elems := func(keys [][]byte) []nftables.SetElement {
		var e []nftables.SetElement
		for _, k := range keys {
			e = append(e, nftables.SetElement{Key: k, Timeout: left})
		}
		return e
	}
	var ports, dns4, dns6 [][]byte
	for _, p := range portalPorts {
		ports = append(ports, binaryutil.BigEndian.PutUint16(p))
	}
	for _, a := range w.DNS {
		if a = a.Unmap(); a.Is4() {
			dns4 = append(dns4, a.AsSlice())
		} else {
			dns6 = append(dns6, a.AsSlice())
		}
	}
	tcp := &nftables.Set{Table: t, Name: portalTCPSet, KeyType: nftables.TypeInetService, HasTimeout: true}
	d4 := &nftables.Set{Table: t, Name: portalDNS4Set, KeyType: nftables.TypeIPAddr, HasTimeout: true}
	d6 := &nftables.Set{Table: t, Name: portalDNS6Set, KeyType: nftables.TypeIP6Addr, HasTimeout: true}
	for _, s := range []struct {
		set  *nftables.Set
		keys [][]byte
	}{{tcp, ports}, {d4, dns4}, {d6, dns6}} {
		if err := c.AddSet(s.set, elems(s.keys)); err != nil {
			return fmt.Errorf("portal set: %w", err)
		}
	}
	rule := func(ch *nftables.Chain, exprs ...expr.Any) {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: append(exprs, accept())})
	}
	lookup := func(s *nftables.Set) expr.Any {
		return &expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID}
	}
	port := func(src bool) expr.Any {
		off := uint32(2)
		if src {
			off = 0
		}
		return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: 2}
	}
	addr := func(v6, src bool) []expr.Any {
		off, l := uint32(16), uint32(4)
		if v6 {
			off, l = 24, 16
		}
		if src {
			off -= l
		}
		return append(nfproto(v6), &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: l})
	}
	dns := func(src bool) []expr.Any {
		return []expr.Any{port(src), &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(53)}}
	}
	rule(out, append(l4(unix.IPPROTO_TCP), port(to), lookup(tcp))...)
	rule(in, append(l4(unix.IPPROTO_TCP), port(from), lookup(tcp))...)
	for _, proto := range []byte{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
		for _, s := range []*nftables.Set{d4, d6} {
			v6 := s == d6
			rule(out, slicesConcat(addr(v6, to), []expr.Any{lookup(s)}, l4(proto), dns(to))...)
			rule(in, slicesConcat(addr(v6, from), []expr.Any{lookup(s)}, l4(proto), dns(from))...)
		}
	}
	return nil
}

func slicesConcat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// portalRules are the routing rules of an open window, per family: TCP
// to the portal ports, and DNS to each of the LAN's resolvers, by main.
func portalRules(dns []netip.Addr) []*netlink.Rule {
	var out []*netlink.Rule
	add := func(fam, proto int, port uint16, dst *netip.Addr) {
		r := netlink.NewRule()
		r.Family, r.Priority, r.Table = fam, prioPortal, unix.RT_TABLE_MAIN
		r.IPProto, r.Dport = proto, netlink.NewRulePortRange(port, port)
		if dst != nil {
			r.Dst = ipnet(netip.PrefixFrom(*dst, dst.BitLen()))
		}
		out = append(out, r)
	}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		for _, p := range portalPorts {
			add(fam, unix.IPPROTO_TCP, p, nil)
		}
	}
	for _, a := range dns {
		a = a.Unmap()
		fam := netlink.FAMILY_V4
		if a.Is6() {
			fam = netlink.FAMILY_V6
		}
		add(fam, unix.IPPROTO_UDP, 53, &a)
		add(fam, unix.IPPROTO_TCP, 53, &a)
	}
	return out
}

// delPortalRules removes every routing rule at prioPortal.
func delPortalRules() error {
	var errs []error
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := netlink.RuleListFiltered(fam, &netlink.Rule{Priority: prioPortal}, netlink.RT_FILTER_PRIORITY)
		if err != nil {
			errs = append(errs, fmt.Errorf("listing routing rules: %w", err))
			continue
		}
		for _, r := range rs {
			if err := netlink.RuleDel(&r); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("removing portal routing rule: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

// lanResolvers are the resolvers the system had before the tunnel took
// DNS over (the backup of the resolver file), or that it has now when
// there is no backup.
func lanResolvers(dir, resolv string) []netip.Addr {
	b, err := os.ReadFile(dir + "/" + dnsBackupFile)
	if err != nil {
		b, _ = os.ReadFile(resolv)
	}
	return parseNameservers(b)
}

// nonLoopback drops loopback resolvers, which the kill switch lets
// through anyway and which no routing rule should lead to the LAN.
func nonLoopback(as []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, a := range as {
		if !a.IsLoopback() {
			out = append(out, a)
		}
	}
	return out
}

// openPortal opens a window until until: the kill switch (if on) lets
// the portal traffic out, routing rules keep it off the tunnel, and the
// resolver file points at the LAN's resolvers. Under Tunnel.opMu.
func (p *tunPlane) openPortal(until time.Time) error {
	lan := lanResolvers(p.dir, p.rec.ResolvConf)
	w := portalWindow{Until: until, DNS: nonLoopback(lan)}
	if p.killSwitch {
		ks := p.ks
		ks.Portal = w
		if err := installKillSwitch(p.rec.Interface, ks); err != nil {
			return err
		}
		p.ks = ks
	}
	delPortalRules()
	for _, r := range portalRules(w.DNS) {
		if err := netlink.RuleAdd(r); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("adding portal routing rule: %w", err)
		}
	}
	p.portal = w
	if len(lan) > 0 {
		return setDNS(p.dir, p.rec.ResolvConf, lan)
	}
	return nil
}

// sealPortal closes the window: the resolver file points into the tunnel
// again (dns), the routing rules go, and the kill switch lets out what it
// did before. Under Tunnel.opMu.
func (p *tunPlane) sealPortal(dns []netip.Addr) error {
	if p.portal.Until.IsZero() {
		return nil
	}
	errs := []error{setDNS(p.dir, p.rec.ResolvConf, dns), delPortalRules()}
	if p.killSwitch {
		ks := p.ks
		ks.Portal = portalWindow{}
		if err := installKillSwitch(p.rec.Interface, ks); err != nil {
			errs = append(errs, err)
		} else {
			p.ks = ks
		}
	}
	p.portal = portalWindow{}
	return errors.Join(errs...)
}

// openPortalLockdown opens a window in the kill switch that a dead
// connection left on, for d (zero: closes it). No process reseals it:
// the nftables timeout of the window's elements does. With the dead
// connection's link gone its routes are gone too, so nothing is needed
// to keep the portal traffic off the tunnel.
func openPortalLockdown(dir string, d time.Duration) (time.Time, error) {
	rec, err := loadRecord(dir)
	if err != nil {
		return time.Time{}, err
	}
	if rec == nil || !rec.KillSwitch {
		return time.Time{}, ErrNotConnected
	}
	if holderAlive(rec.PID) {
		return time.Time{}, fmt.Errorf("the veil process (pid %d) holding the connection does not answer", rec.PID)
	}
	if os.Geteuid() != 0 {
		return time.Time{}, errors.New("the kill switch of an earlier connection is on: open the portal window as root")
	}
	lan := lanResolvers(dir, rec.ResolvConf)
	var until time.Time
	if d > 0 {
		until = time.Now().Add(d)
	}
	w := portalWindow{Until: until, DNS: nonLoopback(lan)}
	if err := installKillSwitch(rec.Interface, killSwitchRules{Mark: rec.Fwmark, Portal: w}); err != nil {
		return time.Time{}, err
	}
	if d > 0 && len(lan) > 0 {
		return until, setDNS(dir, rec.ResolvConf, lan)
	}
	return until, nil
}
