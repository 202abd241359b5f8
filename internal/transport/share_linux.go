package transport

import (
	"context"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// ListenShared listens on a TCP address with SO_REUSEPORT, so that a
// listener on every address and one on a single address can hold the
// same port: the kernel hands a connection to the listener whose
// address matches it most closely. A tun-mode gateway needs that for
// WireGuard over TLS on port 443 of every address beside DNS over HTTPS
// on port 443 of its tunnel addresses; without it the second bind fails
// with "address already in use".
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
	return lc.Listen(context.Background(), "tcp", addr)
}
