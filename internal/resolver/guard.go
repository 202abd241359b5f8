package resolver

import (
	"net"

	"github.com/miekg/dns"
)

// PacketConn wraps pc so that datagrams from sources Config.Allow refuses
// are discarded before they are parsed; nothing is ever sent back to them.
func (r *Resolver) PacketConn(pc net.PacketConn) net.PacketConn {
	return &guardedPacketConn{PacketConn: pc, r: r}
}

type guardedPacketConn struct {
	net.PacketConn
	r *Resolver
}

// ReadFrom returns the next datagram from an allowed source.
func (c *guardedPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil {
			return n, addr, err
		}
		if _, ok := c.r.allowed(addr); ok {
			return n, addr, nil
		}
	}
}

// Listener wraps ln so that TCP connections from sources Config.Allow
// refuses are closed as soon as they are accepted.
func (r *Resolver) Listener(ln net.Listener) net.Listener {
	return &guardedListener{Listener: ln, r: r}
}

type guardedListener struct {
	net.Listener
	r *Resolver
}

// Accept returns the next connection from an allowed source.
func (l *guardedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return c, err
		}
		if _, ok := l.r.allowed(c.RemoteAddr()); ok {
			return c, nil
		}
		c.Close()
	}
}

// AcceptMsg is a dns.MsgAcceptFunc that accepts what miekg/dns's default
// accepts and ignores the rest instead of answering FORMERR: a reply to
// garbage only helps reflection.
func (r *Resolver) AcceptMsg(dh dns.Header) dns.MsgAcceptAction {
	if a := dns.DefaultMsgAcceptFunc(dh); a != dns.MsgAccept {
		return dns.MsgIgnore
	}
	return dns.MsgAccept
}
