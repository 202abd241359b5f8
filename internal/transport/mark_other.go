//go:build !linux

package transport

import "syscall"

// markControl does nothing where sockets have no mark.
func markControl(uint32) func(network, address string, c syscall.RawConn) error { return nil }
