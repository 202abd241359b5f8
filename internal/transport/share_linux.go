package transport

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

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
// Of two started on one address at the same instant, one stays.
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
	for try := 1; ; try++ {
		ln, err := lc.Listen(context.Background(), "tcp", addr)
		if err != nil {
			return nil, err
		}
		a := ln.Addr().(*net.TCPAddr)
		n, err := listeners(a)
		if err != nil {
			ln.Close()
			return nil, err
		}
		if n == 1 {
			return ln, nil
		}
		// Another listener holds the address: a gateway running there,
		// or one starting at this instant, which sees this one too and
		// gives way as well. Look again after a random moment: a running
		// one is still there; of two starting, the first to look again
		// finds the port free.
		ln.Close()
		time.Sleep(time.Duration(10+rand.IntN(40)) * time.Millisecond)
		if n, err = listeners(a); err != nil {
			return nil, err
		}
		if n > 0 || try == 3 {
			return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: a, Err: os.NewSyscallError("bind", unix.EADDRINUSE)}
		}
		addr = a.String() // the same port, where addr asked for any
	}
}

// listeners counts the TCP sockets listening on a's port and address
// ("every address" being one, in IPv4 or IPv6).
func listeners(a *net.TCPAddr) (int, error) {
	ap := a.AddrPort()
	same := 0
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		socks, err := netlink.SocketDiagTCP(family)
		for try := 1; errors.Is(err, netlink.ErrDumpInterrupted) && try < 3; try++ {
			socks, err = netlink.SocketDiagTCP(family) // sockets came and went meanwhile
		}
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			return 0, fmt.Errorf("listing the listeners on port %d: %w", ap.Port(), err)
		}
		for _, s := range socks {
			ip, _ := netip.AddrFromSlice(s.ID.Source)
			if s.State == netlink.TCP_LISTEN && s.ID.SourcePort == ap.Port() && sameAddr(ip, ap.Addr()) {
				same++
			}
		}
	}
	return same, nil
}

// sameAddr reports whether listeners on a and b hold the same addresses.
func sameAddr(a, b netip.Addr) bool {
	a, b = a.Unmap(), b.Unmap()
	return a == b || a.IsUnspecified() && b.IsUnspecified()
}
