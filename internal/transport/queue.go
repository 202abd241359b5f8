package transport

import (
	"net"
	"net/netip"
	"sync"

	"golang.zx2c4.com/wireguard/conn"
)

// packet is one received message waiting for wireguard-go.
type packet struct {
	data []byte
	// pooled, if set, is the buffer data lies in, returned to bufPool
	// once copied out.
	pooled *[]byte
	ep     conn.Endpoint
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, MaxMessage); return &b }}

// queueLen is how many messages wait for wireguard-go before the
// connections' readers block (and TCP's or QUIC's flow control slows
// their senders).
const queueLen = 1024

// queue gathers the messages of every connection into one receive
// function, as wireguard-go wants.
type queue struct {
	ch     chan packet
	closed chan struct{}
	once   sync.Once
}

func newQueue() *queue {
	return &queue{ch: make(chan packet, queueLen), closed: make(chan struct{})}
}

// deliver queues p, waiting while the queue is full; false once closed.
func (q *queue) deliver(p packet) bool {
	select {
	case q.ch <- p:
		return true
	case <-q.closed:
		if p.pooled != nil {
			bufPool.Put(p.pooled)
		}
		return false
	}
}

func (q *queue) close() { q.once.Do(func() { close(q.closed) }) }

// receive is a conn.ReceiveFunc: it waits for one message, then takes
// what else is already queued, up to len(bufs).
func (q *queue) receive(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
	var p packet
	select {
	case p = <-q.ch:
	case <-q.closed:
		return 0, net.ErrClosed
	}
	n := 0
	for {
		sizes[n] = copy(bufs[n], p.data)
		eps[n] = p.ep
		if p.pooled != nil {
			bufPool.Put(p.pooled)
		}
		n++
		if n == len(bufs) {
			return n, nil
		}
		select {
		case p = <-q.ch:
		default:
			return n, nil
		}
	}
}

// msgConn is one connection carrying WireGuard messages to one peer.
type msgConn interface {
	// send writes msgs in order; an error means the connection is done.
	send(msgs [][]byte) error
	// close ends the connection; its reader stops.
	close()
}

// connEndpoint is the Endpoint of one gateway-side connection: a reply
// goes back on the connection the message came in on.
type connEndpoint struct {
	c   msgConn
	dst netip.AddrPort
}

var _ conn.Endpoint = (*connEndpoint)(nil)

// ClearSrc does nothing: a connection has one source.
func (e *connEndpoint) ClearSrc() {}

// SrcToString is empty: the source is the connection's.
func (e *connEndpoint) SrcToString() string { return "" }

// DstToString is the peer's address and port.
func (e *connEndpoint) DstToString() string { return e.dst.String() }

// DstToBytes is the peer's address and port for WireGuard's cookies, as
// wireguard-go's UDP endpoints give them.
func (e *connEndpoint) DstToBytes() []byte {
	b, _ := e.dst.MarshalBinary()
	return b
}

// DstIP is the peer's address.
func (e *connEndpoint) DstIP() netip.Addr { return e.dst.Addr() }

// SrcIP is unset: the source is the connection's.
func (e *connEndpoint) SrcIP() netip.Addr { return netip.Addr{} }

// addrPort returns a net.Addr's address and port, or the zero value.
func addrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort()
	case *net.UDPAddr:
		return a.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// unmap returns ap with an IPv4-mapped address made plain IPv4.
func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
