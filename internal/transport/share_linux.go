package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ListenShared listens on a TCP address with SO_REUSEPORT, so that a
// listener on every address and one on a single address can hold the
// same port: the kernel hands a connection to the listener whose
// address matches it most closely. A tun-mode gateway needs that for
// WireGuard over TLS on port 443 of every address beside DNS over HTTPS
// on port 443 of its tunnel addresses; without it the second bind fails
// with "address already in use".
//
// SO_REUSEPORT would also let a second listener on the same address and
// port, a second gateway on the host, take half the connections; that
// one is refused with "address already in use", as without the option.
func ListenShared(addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	if err := alone(ln.Addr().(*net.TCPAddr)); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// alone checks, once a is listening, that no other TCP socket listens on
// its port and address ("every address" being one, in IPv4 or IPv6). Of
// two listeners started at once the one that checks last sees the other,
// so at most one stays.
func alone(a *net.TCPAddr) error {
	ap := a.AddrPort()
	same := 0
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		socks, err := netlink.SocketDiagTCP(family)
		for try := 1; errors.Is(err, netlink.ErrDumpInterrupted) && try < 3; try++ {
			socks, err = netlink.SocketDiagTCP(family) // sockets came and went meanwhile
		}
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			return fmt.Errorf("listing the listeners on port %d: %w", ap.Port(), err)
		}
		for _, s := range socks {
			ip, _ := netip.AddrFromSlice(s.ID.Source)
			if s.State == netlink.TCP_LISTEN && s.ID.SourcePort == ap.Port() && sameAddr(ip, ap.Addr()) {
				same++
			}
		}
	}
	if same > 1 {
		return &net.OpError{Op: "listen", Net: "tcp", Addr: a, Err: os.NewSyscallError("bind", unix.EADDRINUSE)}
	}
	return nil
}

// sameAddr reports whether listeners on a and b hold the same addresses.
func sameAddr(a, b netip.Addr) bool {
	a, b = a.Unmap(), b.Unmap()
	return a == b || a.IsUnspecified() && b.IsUnspecified()
}
