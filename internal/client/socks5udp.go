package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// UDP ASSOCIATE (RFC 1928, section 7). The client asks on its TCP
// connection; the answer names a UDP port on loopback. Each datagram the
// client sends there starts with a header naming its destination; it goes
// out through the tunnel, and what comes back is sent to the client with
// a header naming its source. The association ends with the TCP
// connection.

// maxNames bounds the names an association remembers.
const maxNames = 64

type udpAssoc struct {
	s *socksServer
	// local is where the client sends; peer is the address of its TCP
	// connection: datagrams from anyone else on this machine are dropped.
	local *net.UDPConn
	peer  netip.Addr
	// client is where answers go: the source of the first datagram. It
	// is set before the first tunnel socket opens and never changes.
	client netip.AddrPort

	mu     sync.Mutex
	closed bool
	tunnel [2]net.PacketConn // IPv4, IPv6: opened on first use
	names  map[string]netip.Addr
	wg     sync.WaitGroup
}

// associate serves a UDP ASSOCIATE request made on c, until c closes.
func (s *socksServer) associate(c net.Conn, br *bufio.Reader) {
	if s.udp == nil || s.resolve == nil {
		socksReply(c, socksCmdUnsupported, netip.AddrPort{})
		return
	}
	local, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addrPort(c.LocalAddr()).Addr().Unmap(), 0)))
	if err != nil {
		socksReply(c, socksFailure, netip.AddrPort{})
		return
	}
	a := &udpAssoc{s: s, local: local, peer: addrPort(c.RemoteAddr()).Addr().Unmap(), names: map[string]netip.Addr{}}
	defer a.close()
	if err := socksReply(c, socksOK, addrPort(local.LocalAddr())); err != nil {
		return
	}
	c.SetDeadline(time.Time{})
	a.wg.Go(a.fromClient)
	// The client sends nothing more on the TCP connection; its end (or
	// anything it sends, which the RFC does not allow) ends the
	// association.
	br.ReadByte()
}

func (a *udpAssoc) close() {
	a.mu.Lock()
	a.closed = true
	a.local.Close()
	for _, pc := range a.tunnel {
		if pc != nil {
			pc.Close()
		}
	}
	a.mu.Unlock()
	a.wg.Wait()
}

// fromClient carries the client's datagrams into the tunnel. Datagrams
// that are not for it, malformed, fragmented (FRAG ≠ 0: no reassembly) or
// for a destination that does not resolve are dropped, as UDP would.
func (a *udpAssoc) fromClient() {
	buf := make([]byte, 64<<10)
	for {
		n, src, err := a.local.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if src.Addr().Unmap() != a.peer || (a.client.IsValid() && src != a.client) {
			continue
		}
		host, port, payload, err := parseUDPHeader(buf[:n])
		if err != nil {
			continue
		}
		dst, err := a.destination(host)
		if err != nil {
			// The error may name the destination: its kind only (P3).
			a.s.log.Debug("socks udp: destination refused or not resolved")
			continue
		}
		if !a.client.IsValid() {
			a.client = src
		}
		pc, err := a.tunnelConn(dst.Is6())
		if err != nil {
			a.s.log.Debug("socks udp: no tunnel socket", "err", err)
			continue
		}
		pc.WriteTo(payload, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, port)))
	}
}

// toClient carries what comes back through pc to the client.
func (a *udpAssoc) toClient(pc net.PacketConn) {
	buf := make([]byte, 64<<10)
	for {
		// The header goes in front of the payload: read after room for
		// the longest one an address needs.
		const room = 3 + 1 + 16 + 2
		n, from, err := pc.ReadFrom(buf[room:])
		if err != nil {
			return
		}
		hdr := appendSocksAddr([]byte{0, 0, 0}, addrPort(from))
		start := room - len(hdr)
		copy(buf[start:], hdr)
		a.local.WriteToUDPAddrPort(buf[start:room+n], a.client)
	}
}

// destination resolves host through the tunnel, remembering names for
// the association's life.
func (a *udpAssoc) destination(host string) (netip.Addr, error) {
	if ip, ok := a.names[host]; ok {
		return ip, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ips, err := a.s.resolve(ctx, host)
	if err != nil {
		return netip.Addr{}, err
	}
	if len(a.names) == maxNames {
		clear(a.names)
	}
	a.names[host] = ips[0]
	return ips[0], nil
}

// tunnelConn returns the association's tunnel socket for the family,
// opening it and its reader on first use.
func (a *udpAssoc) tunnelConn(v6 bool) (net.PacketConn, error) {
	i := 0
	if v6 {
		i = 1
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, net.ErrClosed
	}
	if a.tunnel[i] != nil {
		return a.tunnel[i], nil
	}
	pc, err := a.s.udp(v6)
	if err != nil {
		return nil, err
	}
	a.tunnel[i] = pc
	a.wg.Go(func() { a.toClient(pc) })
	return pc, nil
}

var errUDPHeader = errors.New("bad SOCKS5 UDP header")

// parseUDPHeader splits a client's datagram into its destination and
// payload.
func parseUDPHeader(d []byte) (host string, port uint16, payload []byte, err error) {
	if len(d) < 4 || d[0] != 0 || d[1] != 0 {
		return "", 0, nil, errUDPHeader
	}
	if d[2] != 0 {
		return "", 0, nil, errors.New("fragmented SOCKS5 datagrams are not supported")
	}
	r := bytes.NewReader(d[4:])
	host, port, err = socksAddr(r, d[3])
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		err = errUDPHeader
	}
	if err != nil {
		return "", 0, nil, err
	}
	return host, port, d[len(d)-r.Len():], nil
}

// addrPort is the address of a TCP or UDP socket.
func addrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort()
	case *net.TCPAddr:
		return a.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
