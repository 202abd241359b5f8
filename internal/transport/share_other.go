//go:build !linux

package transport

import "net"

// ListenShared is net.Listen where the gateway's tun mode, the one user
// of a shared port, does not run.
func ListenShared(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
