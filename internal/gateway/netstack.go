package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.zx2c4.com/wireguard/tun"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"

	"veil/internal/wg"
)

type tunDevice = tun.Device

const (
	dialTimeout   = 10 * time.Second
	udpIdle       = 2 * time.Minute
	echoTimeout   = 5 * time.Second
	maxEchoFlight = 64
	maxTCPFlight  = 1024
)

// netstackPlane terminates the tunnel in a gVisor stack and carries each
// TCP and UDP flow, and ICMP echo, out through host sockets.
type netstackPlane struct {
	g      *Gateway
	ns     *wg.Netstack
	dialer *net.Dialer

	ctx    context.Context // set by start; ends the flows
	cancel context.CancelFunc

	mu     sync.Mutex
	conns  map[io.Closer]struct{}
	flows  map[netip.AddrPort]struct{} // local ends of live outbound TCP sockets
	dns    []dnsServer
	echoes chan struct{} // echo requests in flight
	noEcho atomic.Bool   // the host refused ping sockets
	wg     sync.WaitGroup
}

func newNetstackPlane(g *Gateway) (dataPlane, tunDevice, error) {
	p := &netstackPlane{
		g:      g,
		conns:  make(map[io.Closer]struct{}),
		flows:  make(map[netip.AddrPort]struct{}),
		echoes: make(chan struct{}, maxEchoFlight),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	ns, err := wg.NewNetstack(wg.NetstackConfig{Promiscuous: true, Echo: p.handleEcho})
	if err != nil {
		return nil, nil, err
	}
	p.ns = ns
	return p, ns, nil
}

func (p *netstackPlane) start(ctx context.Context, tc tunnelConfig) error {
	// The guard checks each dial after resolution too, in case a future
	// change dials names.
	p.dialer = p.g.guard.Dialer(&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second})
	for _, a := range tc.addrs {
		if err := p.ns.AddAddress(a.Addr()); err != nil {
			return err
		}
	}
	s := p.ns.Stack()
	tcpFwd := tcp.NewForwarder(s, 0, maxTCPFlight, p.handleTCP)
	s.SetTransportProtocolHandler(tcp.ProtocolNumber, tcpFwd.HandlePacket)
	udpFwd := udp.NewForwarder(s, p.handleUDP)
	s.SetTransportProtocolHandler(udp.ProtocolNumber, udpFwd.HandlePacket)
	if p.g.cfg.Resolver != nil {
		for _, a := range tc.addrs {
			if err := p.serveDNS(netip.AddrPortFrom(a.Addr(), 53)); err != nil {
				return err
			}
		}
	}
	return nil
}

// serveDNS serves the resolver on one tunnel address; only peers reach it,
// since it listens inside the stack.
func (p *netstackPlane) serveDNS(ap netip.AddrPort) error {
	pc, err := p.ns.ListenUDP(ap)
	if err != nil {
		return err
	}
	ln, err := p.ns.ListenTCP(ap)
	if err != nil {
		pc.Close()
		return err
	}
	enc, err := encryptedServers(p.g.cfg.EncryptedDNS, ap.Addr(), func(ap netip.AddrPort) (net.Listener, error) { return p.ns.ListenTCP(ap) })
	if err != nil {
		pc.Close()
		ln.Close()
		return err
	}
	for _, srv := range append(dnsServers(p.g.cfg.Resolver, pc, ln), enc...) {
		p.mu.Lock()
		p.dns = append(p.dns, srv)
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			if err := srv.ActivateAndServe(); err != nil && p.ctx.Err() == nil {
				p.g.log.Error("dns server stopped", "err", err)
			}
		}()
	}
	return nil
}

// dnsGuard is what veil/internal/resolver offers beyond dns.Handler: it
// drops packets and connections from sources it does not serve before
// they are parsed, and garbage without an answer.
type dnsGuard interface {
	PacketConn(net.PacketConn) net.PacketConn
	Listener(net.Listener) net.Listener
	AcceptMsg(dns.Header) dns.MsgAcceptAction
}

// dnsServer is a DNS server on one socket: a *dns.Server, or the
// resolver's own UDP loop.
type dnsServer interface {
	ActivateAndServe() error
	Shutdown() error
}

// packetServer is veil/internal/resolver's UDP read loop, which answers
// cache hits without a goroutine per packet. It needs a socket bound to
// one address, as the gateways' tunnel-address sockets are.
type packetServer interface {
	ServePacket(ctx context.Context, pc net.PacketConn) error
}

// packetLoop runs a packetServer as a dnsServer.
type packetLoop struct {
	ps     packetServer
	pc     net.PacketConn
	ctx    context.Context
	cancel context.CancelFunc
}

func (l *packetLoop) ActivateAndServe() error { return l.ps.ServePacket(l.ctx, l.pc) }

func (l *packetLoop) Shutdown() error {
	l.cancel()
	return l.pc.Close()
}

// dnsServers returns the UDP and TCP servers of h on pc and ln.
func dnsServers(h dns.Handler, pc net.PacketConn, ln net.Listener) []dnsServer {
	var udp dnsServer
	tcp := &dns.Server{Listener: ln, Handler: h}
	if ps, ok := h.(packetServer); ok {
		ctx, cancel := context.WithCancel(context.Background())
		udp = &packetLoop{ps: ps, pc: pc, ctx: ctx, cancel: cancel}
	} else {
		udp = &dns.Server{PacketConn: pc, Handler: h}
	}
	if dg, ok := h.(dnsGuard); ok {
		if s, ok := udp.(*dns.Server); ok {
			s.PacketConn, s.MsgAcceptFunc = dg.PacketConn(pc), dg.AcceptMsg
		}
		tcp.Listener, tcp.MsgAcceptFunc = dg.Listener(ln), dg.AcceptMsg
	}
	return []dnsServer{udp, tcp}
}

func (p *netstackPlane) listen(ap netip.AddrPort) (net.Listener, error) { return p.ns.ListenTCP(ap) }

func (p *netstackPlane) close() error {
	p.cancel()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	servers := p.dns
	p.mu.Unlock()
	for _, s := range servers {
		s.Shutdown()
	}
	// The device closed the stack already (it owns the TUN); closing
	// again is harmless.
	p.ns.Close()
	p.wg.Wait()
	return nil
}

// track registers c to be closed at shutdown; the result unregisters it.
// It reports false, and closes c, if the plane is already closing.
func (p *netstackPlane) track(c io.Closer) (func(), bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx.Err() != nil {
		c.Close()
		return nil, false
	}
	p.conns[c] = struct{}{}
	p.wg.Add(1)
	return func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		c.Close()
		p.wg.Done()
	}, true
}

func addrOf(a tcpip.Address) netip.Addr {
	ip, _ := netip.AddrFromSlice(a.AsSlice())
	return ip
}

// handleTCP carries one TCP connection from a peer. It dials the
// destination first, so a refused or unreachable destination answers the
// peer with a reset rather than an accepted then dropped connection.
func (p *netstackPlane) handleTCP(r *tcp.ForwarderRequest) {
	id := r.ID()
	dst := netip.AddrPortFrom(addrOf(id.LocalAddress), id.LocalPort)
	if p.g.guard.Permit(dst.Addr()) != nil {
		r.Complete(true)
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, dialTimeout)
	out, err := p.dialer.DialContext(ctx, "tcp", dst.String())
	cancel()
	if err != nil {
		r.Complete(true)
		return
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		r.Complete(true)
		out.Close()
		return
	}
	r.Complete(false)
	ep.SocketOptions().SetKeepAlive(true)
	in := gonet.NewTCPConn(&wq, ep)

	doneIn, ok := p.track(in)
	if !ok {
		out.Close()
		return
	}
	defer doneIn()
	doneOut, ok := p.track(out)
	if !ok {
		return
	}
	defer doneOut()
	if la, ok := out.LocalAddr().(*net.TCPAddr); ok {
		local := la.AddrPort()
		p.mu.Lock()
		p.flows[local] = struct{}{}
		p.mu.Unlock()
		defer func() {
			p.mu.Lock()
			delete(p.flows, local)
			p.mu.Unlock()
		}()
	}
	relayTCP(in, out)
}

// carries reports whether local is the host-side end of a TCP connection
// this plane opened for a peer and still holds.
func (p *netstackPlane) carries(local netip.AddrPort) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.flows[netip.AddrPortFrom(local.Addr().Unmap(), local.Port())]
	return ok
}

// halfCloser is a connection that can end its write side alone.
type halfCloser interface {
	net.Conn
	CloseWrite() error
}

// relayTCP copies both ways, passing each side's end of stream on as a
// half close, until both directions end.
func relayTCP(a, b net.Conn) {
	var wg sync.WaitGroup
	cp := func(dst, src net.Conn) {
		defer wg.Done()
		io.Copy(dst, src)
		if hc, ok := dst.(halfCloser); ok {
			hc.CloseWrite()
		} else {
			dst.Close()
		}
	}
	wg.Add(2)
	go cp(a, b)
	go cp(b, a)
	wg.Wait()
}

// handleUDP starts relaying one UDP flow (a peer's source port and a
// destination). It runs on the stack's packet path and must not block.
func (p *netstackPlane) handleUDP(r *udp.ForwarderRequest) {
	id := r.ID()
	dst := netip.AddrPortFrom(addrOf(id.LocalAddress), id.LocalPort)
	if p.g.guard.Permit(dst.Addr()) != nil {
		return
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		return
	}
	in := gonet.NewUDPConn(&wq, ep)
	done, ok := p.track(in)
	if !ok {
		return
	}
	go func() {
		defer done()
		p.relayUDP(in, dst)
	}()
}

// relayUDP carries datagrams between the peer's flow and a host socket
// until the flow has been idle for udpIdle.
func (p *netstackPlane) relayUDP(in net.Conn, dst netip.AddrPort) {
	ctx, cancel := context.WithTimeout(p.ctx, dialTimeout)
	out, err := p.dialer.DialContext(ctx, "udp", dst.String())
	cancel()
	if err != nil {
		return
	}
	done, ok := p.track(out)
	if !ok {
		return
	}
	defer done()

	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	var wg sync.WaitGroup
	cp := func(dst, src net.Conn) {
		defer wg.Done()
		defer in.Close()
		defer out.Close()
		buf := make([]byte, 65535)
		for {
			src.SetReadDeadline(time.Now().Add(udpIdle))
			n, err := src.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() &&
					time.Since(time.Unix(0, last.Load())) < udpIdle {
					continue // the other direction is active
				}
				return
			}
			last.Store(time.Now().UnixNano())
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
	}
	wg.Add(2)
	go cp(out, in)
	go cp(in, out)
	wg.Wait()
}

// handleEcho answers a peer's ping with the destination's real answer,
// through an unprivileged ping socket, or a raw one when the gateway runs
// with CAP_NET_RAW. Where the host allows neither, pings go unanswered.
func (p *netstackPlane) handleEcho(e wg.Echo) {
	if p.noEcho.Load() || p.g.guard.Permit(e.Dst) != nil || p.ctx.Err() != nil {
		return
	}
	select {
	case p.echoes <- struct{}{}:
	default:
		return // too many in flight: drop, as a router would
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer func() { <-p.echoes }()
		if p.echo(e) {
			p.ns.ReplyEcho(e)
		}
	}()
}

// listenEcho opens a socket for ICMP echo of one family.
func listenEcho(v6 bool) (c *icmp.PacketConn, raw bool, err error) {
	unpriv, priv, addr := "udp4", "ip4:icmp", "0.0.0.0"
	if v6 {
		unpriv, priv, addr = "udp6", "ip6:ipv6-icmp", "::"
	}
	if c, err = icmp.ListenPacket(unpriv, addr); err == nil {
		return c, false, nil
	}
	if c, err = icmp.ListenPacket(priv, addr); err == nil {
		return c, true, nil
	}
	return nil, false, err
}

// echo sends one echo request to e.Dst and reports whether it answered.
func (p *netstackPlane) echo(e wg.Echo) bool {
	var req, reply icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	proto := 1
	if e.Dst.Is6() {
		req, reply, proto = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, 58
	}
	c, raw, err := listenEcho(e.Dst.Is6())
	if err != nil {
		if p.noEcho.CompareAndSwap(false, true) {
			p.g.log.Warn("ICMP echo through the tunnel unavailable: no ping socket allowed on this host")
		}
		return false
	}
	done, ok := p.track(c)
	if !ok {
		return false
	}
	defer done()
	msg, err := (&icmp.Message{Type: req, Body: &icmp.Echo{ID: int(e.ID), Seq: int(e.Seq), Data: e.Data}}).Marshal(nil)
	if err != nil {
		return false
	}
	var to net.Addr = &net.UDPAddr{IP: e.Dst.AsSlice()}
	if raw {
		to = &net.IPAddr{IP: e.Dst.AsSlice()}
	}
	if _, err := c.WriteTo(msg, to); err != nil {
		return false
	}
	c.SetReadDeadline(time.Now().Add(echoTimeout))
	buf := make([]byte, 65535)
	for range 64 { // bounded: a raw socket sees others' answers too
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return false
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || m.Type != reply {
			continue
		}
		body, ok := m.Body.(*icmp.Echo)
		if !ok || body.Seq != int(e.Seq) {
			continue
		}
		// The kernel sets the ID of a ping socket; a raw one keeps ours.
		if raw && (body.ID != int(e.ID) || !sameIP(from, e.Dst)) {
			continue
		}
		return true
	}
	return false
}

func sameIP(a net.Addr, ip netip.Addr) bool {
	var got net.IP
	switch a := a.(type) {
	case *net.IPAddr:
		got = a.IP
	case *net.UDPAddr:
		got = a.IP
	}
	g, ok := netip.AddrFromSlice(got)
	return ok && g.Unmap() == ip.Unmap()
}
