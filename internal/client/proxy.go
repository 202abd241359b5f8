package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/miekg/dns"

	"veil/internal/wg"
)

// proxyPlane is proxy mode: the tunnel on a gVisor netstack, offered to
// local programs as a SOCKS5 and an HTTP proxy on loopback.
type proxyPlane struct {
	ns     *wg.Netstack
	dialer *tunnelDialer
	socks  net.Listener
	http   net.Listener
	srv    *http.Server
	wg     sync.WaitGroup
	done   chan struct{}
}

func (t *Tunnel) upProxy(_ context.Context, sp tunnelSpec) error {
	var own []netip.Addr
	for _, p := range sp.addrs {
		own = append(own, p.Addr())
	}
	ns, err := wg.NewNetstack(wg.NetstackConfig{Addresses: own, AllowLoopback: t.cfg.AllowLoopback, MTU: t.tunnelMTU()})
	if err != nil {
		return fmt.Errorf("starting the userspace network stack: %w", err)
	}
	dev, err := wg.NewDevice(wg.DeviceConfig{TUN: ns, Bind: t.bind, PrivateKey: sp.priv, Logger: t.log})
	if err != nil {
		ns.Close()
		return err
	}
	t.dev = dev
	p := &proxyPlane{ns: ns, done: make(chan struct{})}
	p.dialer = &tunnelDialer{dial: ns.DialContext, resolver: &tunnelResolver{dial: ns.DialContext, servers: sp.dns},
		allowLoopback: t.cfg.AllowLoopback}
	t.proxy = p
	if err := t.addPeer(); err != nil {
		t.close(false)
		return err
	}
	if addr := orDefault(t.cfg.SOCKS, DefaultSOCKS); addr != "off" {
		if p.socks, err = listenLoopback(addr); err != nil {
			t.close(false)
			return fmt.Errorf("SOCKS5 proxy: %w", err)
		}
		s := &socksServer{dial: p.dialer.DialContext, resolve: p.dialer.destinations, udp: p.listenUDP, log: t.log}
		p.wg.Go(func() { s.serve(p.socks) })
	}
	if addr := orDefault(t.cfg.HTTPProxy, DefaultHTTPProxy); addr != "off" {
		if p.http, err = listenLoopback(addr); err != nil {
			t.close(false)
			return fmt.Errorf("HTTP proxy: %w", err)
		}
		p.srv = newHTTPProxy(p.dialer.DialContext, t.log)
		p.wg.Go(func() { p.srv.Serve(p.http) })
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// listenLoopback listens on addr, which must be a loopback address: the
// proxies have no authentication, so they are for this machine only.
func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%q is not HOST:PORT", addr)
	}
	if ip, err := netip.ParseAddr(host); (err != nil && host != "localhost") || (err == nil && !ip.IsLoopback()) {
		return nil, fmt.Errorf("%s is not a loopback address: the proxy has no password, so it listens on this machine only", host)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	return ln, nil
}

// listenUDP opens an unconnected UDP socket in the tunnel, for SOCKS5
// UDP associations.
func (p *proxyPlane) listenUDP(v6 bool) (net.PacketConn, error) {
	unspec := netip.IPv4Unspecified()
	if v6 {
		unspec = netip.IPv6Unspecified()
	}
	pc, err := p.ns.ListenUDP(netip.AddrPortFrom(unspec, 0))
	if err != nil {
		return nil, err
	}
	return pc, nil
}

func (p *proxyPlane) socksAddr() string {
	if p.socks == nil {
		return ""
	}
	return p.socks.Addr().String()
}

func (p *proxyPlane) httpAddr() string {
	if p.http == nil {
		return ""
	}
	return p.http.Addr().String()
}

func (p *proxyPlane) close() {
	close(p.done)
	if p.socks != nil {
		p.socks.Close()
	}
	if p.srv != nil {
		p.srv.Close()
	}
	p.wg.Wait()
}

// SOCKSAddr is the proxy-mode SOCKS5 listener's address, or "".
func (t *Tunnel) SOCKSAddr() string {
	if t.proxy == nil {
		return ""
	}
	return t.proxy.socksAddr()
}

// HTTPProxyAddr is the proxy-mode HTTP proxy's address, or "".
func (t *Tunnel) HTTPProxyAddr() string {
	if t.proxy == nil {
		return ""
	}
	return t.proxy.httpAddr()
}

// DialContext connects through the tunnel (proxy mode), resolving names
// with the gateway's resolver.
func (t *Tunnel) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if t.proxy == nil {
		return nil, errors.New("dial: not in proxy mode")
	}
	return t.proxy.dialer.DialContext(ctx, network, address)
}

type dialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// tunnelDialer dials through the tunnel, host names resolved through it.
type tunnelDialer struct {
	dial     dialFunc
	resolver *tunnelResolver
	// allowLoopback: see TunnelConfig.AllowLoopback.
	allowLoopback bool
}

// errLocalDestination is a loopback or unspecified destination: it names
// this machine, which the tunnel does not lead to.
var errLocalDestination = errors.New("a loopback address is not reached through the tunnel")

// DialContext dials "HOST:PORT", trying each address of HOST in turn.
func (d *tunnelDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	pn, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("bad port %q", port)
	}
	ips, err := d.destinations(ctx, host)
	if err != nil {
		return nil, err
	}
	var firstErr error
	for _, ip := range ips {
		c, err := d.dial(ctx, network, netip.AddrPortFrom(ip, uint16(pn)).String())
		if err == nil {
			return c, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, firstErr
}

// destinations resolves host through the tunnel, leaving out the
// addresses that name this machine: the userspace stack would drop their
// packets unanswered.
func (d *tunnelDialer) destinations(ctx context.Context, host string) ([]netip.Addr, error) {
	ips, err := d.resolver.LookupNetIP(ctx, host)
	if err != nil {
		return nil, err
	}
	out := ips[:0]
	for _, ip := range ips {
		if d.allowLoopback || !(ip.IsLoopback() || ip.IsUnspecified()) {
			out = append(out, ip)
		}
	}
	if len(out) == 0 {
		return nil, errLocalDestination
	}
	return out, nil
}

// errNoSuchHost is what a name that does not resolve gives.
var errNoSuchHost = errors.New("no such host")

// tunnelResolver asks the gateway's resolver, through the tunnel, and
// nothing else: no /etc/hosts, no search domains, no local resolver.
type tunnelResolver struct {
	dial dialFunc
	// mu guards servers, which change when Watch moves to another gateway.
	mu      sync.Mutex
	servers []netip.Addr
}

func (r *tunnelResolver) setServers(s []netip.Addr) {
	r.mu.Lock()
	r.servers = s
	r.mu.Unlock()
}

func (r *tunnelResolver) currentServers() []netip.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.servers
}

// LookupNetIP returns host's IPv4 then IPv6 addresses; an address literal
// is returned as it is.
func (r *tunnelResolver) LookupNetIP(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip.Unmap()}, nil
	}
	if len(r.currentServers()) == 0 {
		return nil, errors.New("the gateway offers no DNS resolver")
	}
	name := dns.Fqdn(host)
	if _, ok := dns.IsDomainName(name); !ok {
		return nil, fmt.Errorf("%w: bad name", errNoSuchHost)
	}
	type answer struct {
		ips []netip.Addr
		err error
	}
	var a4, a6 answer
	var wg sync.WaitGroup
	wg.Go(func() { a4.ips, a4.err = r.query(ctx, name, dns.TypeA) })
	wg.Go(func() { a6.ips, a6.err = r.query(ctx, name, dns.TypeAAAA) })
	wg.Wait()
	ips := append(a4.ips, a6.ips...)
	if len(ips) > 0 {
		return ips, nil
	}
	if a4.err != nil {
		return nil, a4.err
	}
	if a6.err != nil {
		return nil, a6.err
	}
	return nil, errNoSuchHost
}

func (r *tunnelResolver) query(ctx context.Context, name string, qtype uint16) ([]netip.Addr, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = true
	var lastErr error
	for _, srv := range r.currentServers() {
		in, err := r.exchange(ctx, m, srv, "udp")
		if err == nil && in.Truncated {
			in, err = r.exchange(ctx, m, srv, "tcp")
		}
		if err != nil {
			lastErr = err
			continue
		}
		if in.Rcode != dns.RcodeSuccess {
			if in.Rcode == dns.RcodeNameError {
				return nil, errNoSuchHost
			}
			lastErr = fmt.Errorf("the gateway's resolver answered %s", dns.RcodeToString[in.Rcode])
			continue
		}
		var out []netip.Addr
		for _, rr := range in.Answer {
			switch v := rr.(type) {
			case *dns.A:
				if ip, ok := netip.AddrFromSlice(v.A.To4()); ok {
					out = append(out, ip)
				}
			case *dns.AAAA:
				if ip, ok := netip.AddrFromSlice(v.AAAA); ok {
					out = append(out, ip)
				}
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("resolving through the tunnel: %w", lastErr)
}

func (r *tunnelResolver) exchange(ctx context.Context, m *dns.Msg, srv netip.Addr, network string) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := r.dial(ctx, network, netip.AddrPortFrom(srv, 53).String())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	co := &dns.Conn{Conn: c}
	id := dns.Id()
	q := m.Copy()
	q.Id = id
	if err := co.WriteMsg(q); err != nil {
		return nil, err
	}
	for {
		in, err := co.ReadMsg()
		if err != nil {
			return nil, err
		}
		if in.Id == id {
			return in, nil
		}
	}
}
