//go:build !linux

package resolver

import (
	"context"
	"net"
)

// serveBatches is ServePacket's loop over a UDP socket: where there is no
// recvmmsg(2), one datagram at a time.
func (r *Resolver) serveBatches(ctx context.Context, uc *net.UDPConn) error {
	return r.serveEach(ctx, uc)
}
