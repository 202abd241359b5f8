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
// authentication, CONNECT only. Every connection is dialled through the
// tunnel, and names that clients send (ATYP domain, "socks5h") are
// resolved through it too. It is written here because the maintained Go
// SOCKS5 servers either resolve names locally before a custom dialer sees
// them or pull in more than these 150 lines do.
type socksServer struct {
	dial dialFunc
	log  *slog.Logger
}

// SOCKS5 protocol constants.
const (
	socksVersion    = 5
	socksNoAuth     = 0
	socksNoMethod   = 0xff
	socksConnect    = 1
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
	target, err := socksHandshake(br, c)
	if err != nil {
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
	local, _ := netip.ParseAddrPort(up.LocalAddr().String())
	if err := socksReply(c, socksOK, local); err != nil {
		return
	}
	c.SetDeadline(time.Time{})
	// Bytes the client sent early are in br; copy from it.
	splice(c, br, up)
}

// socksHandshake reads the greeting and the request, answers the
// greeting, and returns the target "HOST:PORT". Refusals are answered.
func socksHandshake(br *bufio.Reader, w io.Writer) (string, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return "", err
	}
	if hdr[0] != socksVersion {
		return "", errors.New("not SOCKS5")
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(br, methods); err != nil {
		return "", err
	}
	method := byte(socksNoMethod)
	for _, m := range methods {
		if m == socksNoAuth {
			method = socksNoAuth
		}
	}
	if _, err := w.Write([]byte{socksVersion, method}); err != nil {
		return "", err
	}
	if method == socksNoMethod {
		return "", errors.New("no acceptable method")
	}
	var req [4]byte
	if _, err := io.ReadFull(br, req[:]); err != nil {
		return "", err
	}
	if req[0] != socksVersion {
		return "", errors.New("bad request version")
	}
	var host string
	switch req[3] {
	case socksAtypIPv4, socksAtypIPv6:
		n := 4
		if req[3] == socksAtypIPv6 {
			n = 16
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(br, b); err != nil {
			return "", err
		}
		ip, _ := netip.AddrFromSlice(b)
		host = ip.Unmap().String()
	case socksAtypDomain:
		l, err := br.ReadByte()
		if err != nil {
			return "", err
		}
		b := make([]byte, l)
		if _, err := io.ReadFull(br, b); err != nil {
			return "", err
		}
		host = string(b)
	default:
		socksReply(w, socksAtypUnsupport, netip.AddrPort{})
		return "", errors.New("address type not supported")
	}
	var port [2]byte
	if _, err := io.ReadFull(br, port[:]); err != nil {
		return "", err
	}
	if req[1] != socksConnect {
		socksReply(w, socksCmdUnsupported, netip.AddrPort{})
		return "", errors.New("command not supported")
	}
	return net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(port[:])))), nil
}

// socksReply sends a reply with the bound address (zero: 0.0.0.0:0).
func socksReply(w io.Writer, code byte, bound netip.AddrPort) error {
	b := []byte{socksVersion, code, 0}
	ip := bound.Addr().Unmap()
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
	b = binary.BigEndian.AppendUint16(b, bound.Port())
	_, err := w.Write(b)
	return err
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
