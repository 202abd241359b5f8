//go:build !linux

package client

import (
	"context"
	"errors"
	"net/netip"
)

// Probing is for tun mode, which is Linux only for now.

func pingSizes(context.Context, string, netip.Addr, []int) (int, error) {
	return 0, errors.New("MTU probing is available on Linux only")
}

func setLinkMTU(string, int) error { return errors.New("tun mode is available on Linux only") }
