package harness

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// StartUDPEcho serves UDP on ip: each datagram is answered with the
// sender's address, a space and the payload.
func StartUDPEcho(tb testing.TB, ip netip.Addr) netip.AddrPort {
	tb.Helper()
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			pc.WriteToUDPAddrPort(fmt.Appendf(nil, "%s %s", from.Addr().Unmap(), buf[:n]), from)
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// SOCKSUDP is a SOCKS5 UDP association (RFC 1928, section 7) made the
// way a client program makes one, to test the proxy's side of it.
type SOCKSUDP struct {
	ctl   net.Conn
	conn  *net.UDPConn // connected to the relay port the proxy named
	Relay netip.AddrPort
}

// AssociateUDP asks the SOCKS5 proxy at addr for a UDP association.
func AssociateUDP(tb testing.TB, addr string) *SOCKSUDP {
	tb.Helper()
	ctl, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ctl.Close() })
	ctl.SetDeadline(time.Now().Add(10 * time.Second))
	// No authentication; UDP ASSOCIATE from 0.0.0.0:0 (any port).
	ctl.Write([]byte{5, 1, 0, 5, 3, 0, 1, 0, 0, 0, 0, 0, 0})
	reply := make([]byte, 2+10)
	if _, err := io.ReadFull(ctl, reply); err != nil {
		tb.Fatalf("UDP ASSOCIATE: %v", err)
	}
	if reply[3] != 0 || reply[2+3] != 1 {
		tb.Fatalf("UDP ASSOCIATE answered % x, want success with an IPv4 relay address", reply)
	}
	ip, _ := netip.AddrFromSlice(reply[2+4 : 2+8])
	relay := netip.AddrPortFrom(ip, binary.BigEndian.Uint16(reply[2+8:]))
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(relay))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	ctl.SetDeadline(time.Time{})
	return &SOCKSUDP{ctl: ctl, conn: conn, Relay: relay}
}

// Send sends payload to host:port (host an IP address or a name, which
// the proxy resolves) through the association.
func (u *SOCKSUDP) Send(host string, port uint16, payload []byte) error {
	d := []byte{0, 0, 0}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Is4() {
		d = append(append(d, 1), ip.AsSlice()...)
	} else if err == nil {
		d = append(append(d, 4), ip.AsSlice()...)
	} else {
		d = append(append(d, 3, byte(len(host))), host...)
	}
	d = binary.BigEndian.AppendUint16(d, port)
	_, err := u.conn.Write(append(d, payload...))
	return err
}

// SendRaw sends d to the relay as it is, header and all.
func (u *SOCKSUDP) SendRaw(d []byte) error {
	_, err := u.conn.Write(d)
	return err
}

// Recv waits up to timeout for a datagram and returns the source its
// header names and its payload.
func (u *SOCKSUDP) Recv(timeout time.Duration) (netip.AddrPort, []byte, error) {
	u.conn.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 64<<10)
	n, err := u.conn.Read(buf)
	if err != nil {
		return netip.AddrPort{}, nil, err
	}
	d := buf[:n]
	if n < 10 || d[2] != 0 {
		return netip.AddrPort{}, nil, fmt.Errorf("bad datagram from the relay: % x", d)
	}
	l := 4
	if d[3] == 4 {
		l = 16
	}
	if n < 4+l+2 {
		return netip.AddrPort{}, nil, fmt.Errorf("short datagram from the relay: % x", d)
	}
	ip, _ := netip.AddrFromSlice(d[4 : 4+l])
	return netip.AddrPortFrom(ip, binary.BigEndian.Uint16(d[4+l:])), d[4+l+2:], nil
}

// Close ends the association by closing its TCP connection.
func (u *SOCKSUDP) Close() { u.ctl.Close() }
