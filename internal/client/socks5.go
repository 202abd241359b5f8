package client

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// socksServer is a SOCKS5 server (RFC 1928) for loopback clients: no
// authentication, CONNECT and UDP ASSOCIATE. Every connection and every
// datagram goes through the tunnel, and names that clients send (ATYP
// domain, "socks5h") are resolved through it too. It is written here
// because the maintained Go SOCKS5 servers either resolve names locally
// before a custom dialer sees them or pull in more than these few hundred
// lines do.
type socksServer struct {
	dial dialFunc
	// resolve gives the addresses a datagram for host may go to, through
	// the tunnel's resolver; udp opens an unconnected UDP socket in the
	// tunnel for IPv4 or IPv6. Without them UDP ASSOCIATE is refused.
	resolve func(ctx context.Context, host string) ([]netip.Addr, error)
	udp     func(v6 bool) (net.PacketConn, error)
	log     *slog.Logger
}

// SOCKS5 protocol constants.
const (
	socksVersion    = 5
	socksNoAuth     = 0
	socksNoMethod   = 0xff
	socksConnect    = 1
	socksAssociate  = 3
	socksAtypIPv4   = 1
	socksAtypDomain = 3
	socksAtypIPv6   = 4

	socksOK             = 0
	socksFailure        = 1
	socksNotAllowed     = 2
	socksNetUnreachable = 3
	socksHostUnreach    = 4
	socksRefused        = 5
	socksCmdUnsupported = 7
	socksAtypUnsupport  = 8
)

func (s *socksServer) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Debug("socks accept failed", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go s.handle(c)
	}
}

func (s *socksServer) handle(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	cmd, target, err := socksHandshake(br, c)
	if err != nil {
		return
	}
	if cmd == socksAssociate {
		s.associate(c, br)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	up, err := s.dial(ctx, "tcp", target)
	cancel()
	if err != nil {
		// The error may name the destination: log its kind only (P3).
		s.log.Debug("socks connect failed")
		socksReply(c, socksErrCode(err), netip.AddrPort{})
		return
	}
	defer up.Close()
	local := addrPort(up.LocalAddr())
	if err := socksReply(c, socksOK, local); err != nil {
		return
	}
	c.SetDeadline(time.Time{})
	// Bytes the client sent early are in br; copy from it.
	splice(c, br, up)
}

// socksHandshake reads the greeting and the request, answers the
// greeting, and returns the command (CONNECT or UDP ASSOCIATE) and its
// "HOST:PORT". Refusals are answered.
func socksHandshake(br *bufio.Reader, w io.Writer) (cmd byte, target string, err error) {
	var hdr [2]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return 0, "", err
	}
	if hdr[0] != socksVersion {
		return 0, "", errors.New("not SOCKS5")
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(br, methods); err != nil {
		return 0, "", err
	}
	method := byte(socksNoMethod)
	for _, m := range methods {
		if m == socksNoAuth {
			method = socksNoAuth
		}
	}
	if _, err := w.Write([]byte{socksVersion, method}); err != nil {
		return 0, "", err
	}
	if method == socksNoMethod {
		return 0, "", errors.New("no acceptable method")
	}
	var req [4]byte
	if _, err := io.ReadFull(br, req[:]); err != nil {
		return 0, "", err
	}
	if req[0] != socksVersion {
		return 0, "", errors.New("bad request version")
	}
	host, port, err := socksAddr(br, req[3])
	if errors.Is(err, errAtyp) {
		socksReply(w, socksAtypUnsupport, netip.AddrPort{})
	}
	if err != nil {
		return 0, "", err
	}
	if req[1] != socksConnect && req[1] != socksAssociate {
		socksReply(w, socksCmdUnsupported, netip.AddrPort{})
		return 0, "", errors.New("command not supported")
	}
	return req[1], net.JoinHostPort(host, strconv.Itoa(int(port))), nil
}

var errAtyp = errors.New("address type not supported")

// socksAddr reads an address of type atyp and a port, as requests and
// UDP datagram headers carry them.
func socksAddr(r io.Reader, atyp byte) (host string, port uint16, err error) {
	var b []byte
	switch atyp {
	case socksAtypIPv4:
		b = make([]byte, 4+2)
	case socksAtypIPv6:
		b = make([]byte, 16+2)
	case socksAtypDomain:
		var l [1]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return "", 0, err
		}
		b = make([]byte, int(l[0])+2)
	default:
		return "", 0, errAtyp
	}
	if _, err := io.ReadFull(r, b); err != nil {
		return "", 0, err
	}
	a, p := b[:len(b)-2], binary.BigEndian.Uint16(b[len(b)-2:])
	if atyp == socksAtypDomain {
		return string(a), p, nil
	}
	ip, _ := netip.AddrFromSlice(a)
	return ip.Unmap().String(), p, nil
}

// socksReply sends a reply with the bound address (zero: 0.0.0.0:0).
func socksReply(w io.Writer, code byte, bound netip.AddrPort) error {
	_, err := w.Write(appendSocksAddr([]byte{socksVersion, code, 0}, bound))
	return err
}

// appendSocksAddr appends ap as an address type, address and port (zero:
// 0.0.0.0:0).
func appendSocksAddr(b []byte, ap netip.AddrPort) []byte {
	ip := ap.Addr().Unmap()
	switch {
	case ip.Is6():
		b = append(b, socksAtypIPv6)
		b = append(b, ip.AsSlice()...)
	case ip.Is4():
		b = append(b, socksAtypIPv4)
		b = append(b, ip.AsSlice()...)
	default:
		b = append(b, socksAtypIPv4, 0, 0, 0, 0)
	}
	return binary.BigEndian.AppendUint16(b, ap.Port())
}

func socksErrCode(err error) byte {
	switch {
	case errors.Is(err, errLocalDestination):
		return socksNotAllowed
	case errors.Is(err, errNoSuchHost):
		return socksHostUnreach
	case errors.Is(err, syscall.ECONNREFUSED), containsText(err, "refused"):
		return socksRefused
	case errors.Is(err, syscall.ENETUNREACH), containsText(err, "unreachable"):
		return socksNetUnreachable
	}
	return socksFailure
}

// containsText looks into errors from the userspace stack, which carry
// no errno.
func containsText(err error, s string) bool {
	return err != nil && len(s) > 0 && strings.Contains(err.Error(), s)
}

// splice copies both ways until both directions are done.
func splice(client net.Conn, fromClient io.Reader, up net.Conn) {
	done := make(chan struct{})
	go func() {
		io.Copy(up, fromClient)
		closeWrite(up)
		close(done)
	}()
	io.Copy(client, up)
	closeWrite(client)
	<-done
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}
