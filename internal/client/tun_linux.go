package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"veil/internal/wg"
)

// Rule priorities. Everything not marked goes to the tunnel's table,
// ahead of main: unlike wg-quick there is no rule consulting main
// without its default routes first, for then a route more specific than
// the default that the LAN pushes (DHCP option 121, as a rogue router
// may) would take traffic around the tunnel. prioSuppress is that rule's
// priority, which earlier versions installed; it is still removed with
// a connection, so that one taken over or disconnected leaves none.
const (
	prioSuppress = 32764
	prioTunnel   = 32765
)

// tunPlane is tun mode: a kernel TUN with the default routes in a table of
// their own, selected by policy rules as wg-quick does, so that the
// WireGuard socket's own packets (marked) keep the normal routes.
type tunPlane struct {
	dir        string
	rec        record
	killSwitch bool
	// ks is what the installed kill switch lets out; only Up and then
	// Watch (under Tunnel.opMu) change it.
	ks killSwitchRules
	// api is the control plane, resolved before the tunnel took DNS over,
	// for Watch to reach over a marked socket.
	api []netip.AddrPort
	// locked is set once a kill switch, this connection's or a dead
	// one's, is in place: a connection that then fails leaves it on.
	locked bool
	// portal is the open captive-portal window, if any (under opMu).
	portal portalWindow
}

// lockedDown reports whether a kill switch is in place.
func (p *tunPlane) lockedDown() bool { return p.locked }

func (t *Tunnel) upTUN(ctx context.Context, sp tunnelSpec) error {
	if os.Geteuid() != 0 {
		return errors.New("tun mode needs root; use --mode proxy to connect without it")
	}
	if t.cfg.Dir == "" {
		return errors.New("tun mode needs a state directory")
	}
	old, err := loadRecord(t.cfg.Dir)
	if err != nil {
		return err
	}
	if old != nil {
		if holderAlive(old.PID) {
			return fmt.Errorf("another veil process (pid %d) holds the connection: `veil disconnect` first", old.PID)
		}
		// A dead connection's routes, link and DNS setting go; its kill
		// switch stays until this connection's replaces it in one
		// transaction, so nothing leaks in between.
		if err := undoRoutes(t.cfg.Dir, old); err != nil {
			return fmt.Errorf("taking over the earlier connection: %w", err)
		}
		if old.KillSwitch && !t.cfg.KillSwitch {
			if err := removeKillSwitch(); err != nil {
				return err
			}
		}
	}
	// The control plane is resolved now, while the system's resolver
	// still answers: once the tunnel is up and DNS points into it, a
	// gateway that changed its key leaves no way to resolve anything.
	// Behind a dead connection's kill switch it does not answer either:
	// that connection's addresses serve.
	var api []netip.AddrPort
	switch {
	case t.cfg.State.Control == "" || t.cfg.Servers != nil:
	case old != nil && old.KillSwitch && len(old.API) > 0:
		api = old.API
	default:
		a, rerr := resolveControl(ctx, t.cfg.State.Control)
		if rerr != nil {
			t.log.Warn("cannot resolve the control plane; reconnecting will not find a moved gateway")
		}
		api = a
	}
	p := &tunPlane{dir: t.cfg.Dir, killSwitch: t.cfg.KillSwitch, api: api, rec: record{
		PID:        os.Getpid(),
		Interface:  t.cfg.TUNName,
		Fwmark:     DefaultFwmark,
		KillSwitch: t.cfg.KillSwitch,
		ResolvConf: orDefault(t.cfg.ResolvConf, DefaultResolvConf),
		API:        api,
	}}
	p.locked = t.cfg.KillSwitch && old != nil && old.KillSwitch
	f := flowsTo(sp.endpoint, t.gw)
	p.ks = killSwitchRules{Endpoints: f.udp, TCP: f.tcp, Mark: p.rec.Fwmark}
	// The record goes first: whatever happens next, disconnect can undo.
	if err := p.rec.save(p.dir); err != nil {
		return fmt.Errorf("saving connection record: %w", err)
	}
	t.tun = p
	if t.cfg.KillSwitch {
		if err := installKillSwitch(p.rec.Interface, p.ks); err != nil {
			return err
		}
		p.locked = true
	}
	// A link of that name left by another program would receive our
	// addresses; refuse instead.
	if _, err := netlink.LinkByName(t.cfg.TUNName); err == nil {
		return fmt.Errorf("a network interface named %s already exists", t.cfg.TUNName)
	}
	tdev, err := wg.CreateTUN(t.cfg.TUNName, t.tunnelMTU())
	if err != nil {
		return err
	}
	dev, err := wg.NewDevice(wg.DeviceConfig{
		TUN:          tdev,
		Bind:         t.bind,
		FirewallMark: DefaultFwmark,
		PrivateKey:   sp.priv,
		Logger:       t.log,
	})
	if err != nil {
		return err
	}
	t.dev = dev
	if err := t.addPeer(); err != nil {
		return err
	}
	if err := p.configure(t.cfg.TUNName, sp.addrs); err != nil {
		return err
	}
	return setDNS(p.dir, p.rec.ResolvConf, sp.dns)
}

// configure gives the link its addresses, the tunnel table its default
// routes and the system the policy rules. Without an IPv6 tunnel address,
// IPv6 gets an unreachable default in the tunnel table instead: blocked,
// not leaked.
func (p *tunPlane) configure(name string, addrs []netip.Prefix) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("finding %s: %w", name, err)
	}
	for _, a := range addrs {
		if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: ipnet(a)}); err != nil {
			return fmt.Errorf("adding the tunnel address: %w", err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("bringing %s up: %w", name, err)
	}
	table := int(p.rec.Fwmark)
	for _, v6 := range []bool{false, true} {
		def := netip.MustParsePrefix("0.0.0.0/0")
		if v6 {
			def = netip.MustParsePrefix("::/0")
		}
		r := &netlink.Route{Dst: ipnet(def), Table: table}
		if hasFamily(addrs, !v6) {
			r.LinkIndex = link.Attrs().Index
		} else {
			r.Type = unix.RTN_UNREACHABLE
		}
		if v6 {
			r.Family = netlink.FAMILY_V6
		} else {
			r.Family = netlink.FAMILY_V4
		}
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("adding the tunnel route: %w", err)
		}
	}
	for _, r := range rules(p.rec.Fwmark) {
		if err := netlink.RuleAdd(r); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("adding routing rule: %w", err)
		}
	}
	// As wg-quick: replies to marked packets must pass reverse path checks.
	os.WriteFile("/proc/sys/net/ipv4/conf/all/src_valid_mark", []byte("1"), 0o644)
	return nil
}

// rules are the policy rules a connection installs: unmarked traffic,
// per family, to the tunnel's table.
func rules(mark uint32) []*netlink.Rule {
	var out []*netlink.Rule
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		tun := netlink.NewRule()
		tun.Family, tun.Priority, tun.Table, tun.Mark, tun.Invert = fam, prioTunnel, int(mark), mark, true
		out = append(out, tun)
	}
	return out
}

// oldRules are the rules a connection removes: its own and the main
// table suppress rule that earlier versions installed.
func oldRules(mark uint32) []*netlink.Rule {
	out := rules(mark)
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		sup := netlink.NewRule()
		sup.Family, sup.Priority, sup.Table, sup.SuppressPrefixlen = fam, prioSuppress, unix.RT_TABLE_MAIN, 0
		out = append(out, sup)
	}
	return out
}

func ipnet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// allowEndpoints makes f the gateway flows the kill switch lets out, in
// one transaction.
func (p *tunPlane) allowEndpoints(f flows) error {
	if !p.killSwitch {
		return nil
	}
	ks := p.ks
	ks.Endpoints, ks.TCP = f.udp, f.tcp
	if err := installKillSwitch(p.rec.Interface, ks); err != nil {
		return err
	}
	p.ks = ks
	return nil
}

// allowAPI lets this process's marked sockets reach the control plane
// through the kill switch (on), or no longer (off).
func (p *tunPlane) allowAPI(on bool) error {
	if !p.killSwitch || len(p.api) == 0 || on == (len(p.ks.API) > 0) {
		return nil
	}
	ks := p.ks
	ks.API = nil
	if on {
		ks.API = p.api
	}
	if err := installKillSwitch(p.rec.Interface, ks); err != nil {
		return err
	}
	p.ks = ks
	return nil
}

// setAPI replaces the control plane's addresses (under Tunnel.opMu, while
// the kill switch has no exception open for them), in the record too.
func (p *tunPlane) setAPI(addrs []netip.AddrPort) {
	if slices.Equal(addrs, p.api) {
		return
	}
	p.api = addrs
	p.rec.API = addrs
	p.rec.save(p.dir) // best effort: the old addresses are only less current
}

// apiHTTP is a client for the control plane whose sockets carry the
// tunnel's fwmark: they take the normal routes, not the tunnel, which
// is what Watch needs while the gateway does not answer.
func (p *tunPlane) apiHTTP() *http.Client { return markedHTTP(p.api, p.rec.Fwmark) }

// markedHTTP is an HTTP client that reaches the control plane at addrs,
// whatever host its URL names, over sockets carrying mark.
func markedHTTP(addrs []netip.AddrPort, fwmark uint32) *http.Client {
	mark := int(fwmark)
	d := &net.Dialer{Timeout: 10 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, mark)
		})
		return errors.Join(err, serr)
	}}
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		err := errors.New("the control plane's address is unknown")
		for _, ap := range addrs {
			var c net.Conn
			if c, err = d.DialContext(ctx, "tcp", ap.String()); err == nil {
				return c, nil
			}
		}
		return nil, err
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: dial, Proxy: nil, DisableKeepAlives: true,
	}}
}

// setDNS points the system at the (new) gateway's resolvers; while a
// portal window is open, the LAN's stay until its end, when sealPortal
// points at the gateway's.
func (p *tunPlane) setDNS(servers []netip.Addr) error {
	if !p.portal.Until.IsZero() {
		return nil
	}
	return setDNS(p.dir, p.rec.ResolvConf, servers)
}

func (p *tunPlane) close(keepLockdown bool) error {
	if keepLockdown {
		return nil
	}
	return undo(p.dir, &p.rec)
}

// undo reverses what a tun-mode connection did, as far as it got: rules,
// routes, link, DNS, kill switch (last, so nothing leaks before), record.
func undo(dir string, rec *record) error {
	errs := []error{undoRoutes(dir, rec)}
	if rec.KillSwitch {
		errs = append(errs, removeKillSwitch())
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(dir, recordFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// undoRoutes reverses all of a tun-mode connection but its kill switch
// and record: rules, routes, link, DNS.
func undoRoutes(dir string, rec *record) error {
	errs := []error{delPortalRules()}
	for _, r := range oldRules(rec.Fwmark) {
		if err := netlink.RuleDel(r); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("removing routing rule: %w", err))
		}
	}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := netlink.RouteListFiltered(fam, &netlink.Route{Table: int(rec.Fwmark)}, netlink.RT_FILTER_TABLE)
		if err == nil {
			for _, r := range routes {
				netlink.RouteDel(&r)
			}
		}
	}
	if rec.Interface != "" {
		if link, err := netlink.LinkByName(rec.Interface); err == nil && link.Type() == "tuntap" {
			// Left by a process that died while holding it.
			netlink.LinkDel(link)
		}
	}
	if rec.ResolvConf != "" {
		if err := restoreDNS(dir, rec.ResolvConf); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// OpenLockdown lets this process reach the control plane through the kill
// switch that a dead tun-mode connection (crashed, killed, or one whose
// connect failed) left on, so that a new `veil connect` can take over
// without lifting it. In one transaction the kill switch becomes one that
// lets out only TCP to the control plane's addresses, and only from
// sockets carrying the tunnel's firewall mark, as the returned client's
// do. It returns nil and no error when no kill switch was left.
func OpenLockdown(dir string) (*http.Client, error) {
	rec, err := loadRecord(dir)
	if err != nil || rec == nil || !rec.KillSwitch {
		return nil, err
	}
	if holderAlive(rec.PID) {
		return nil, fmt.Errorf("another veil process (pid %d) holds the connection: `veil disconnect` first", rec.PID)
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("the kill switch of an earlier connection is on: connect as root, or `veil disconnect` to lift it")
	}
	if len(rec.API) == 0 {
		return nil, errors.New("the kill switch of an earlier connection is on and the control plane's address was not kept: `veil disconnect` lifts it")
	}
	if err := installKillSwitch(rec.Interface, killSwitchRules{API: rec.API, Mark: rec.Fwmark}); err != nil {
		return nil, err
	}
	return markedHTTP(rec.API, rec.Fwmark), nil
}

// SealLockdown takes back what OpenLockdown let out, after a connect
// through it failed: the kill switch left on then lets out nothing but
// loopback, DHCP and neighbour discovery until the next connect or
// `veil disconnect`. It does nothing when no kill switch was left, or
// when another live process holds the connection.
func SealLockdown(dir string) error {
	rec, err := loadRecord(dir)
	if err != nil || rec == nil || !rec.KillSwitch || holderAlive(rec.PID) {
		return err
	}
	return installKillSwitch(rec.Interface, killSwitchRules{Mark: rec.Fwmark})
}

// holderAlive reports whether pid is another running veil process, which
// may hold the connection its record describes.
func holderAlive(pid int) bool {
	if pid <= 0 || pid == os.Getpid() || unix.Kill(pid, 0) != nil {
		return false
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return true // cannot tell: assume it may be
	}
	self, err := os.Readlink("/proc/self/exe")
	return err != nil || exe == self
}
