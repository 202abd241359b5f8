//go:build !linux

package client

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"time"
)

// tun mode and the kill switch are Linux only for now.

type tunPlane struct{ killSwitch bool }

func (t *Tunnel) upTUN(context.Context, tunnelSpec) error {
	return errors.New("tun mode is available on Linux only; use --mode proxy")
}

func (p *tunPlane) close(bool) error { return nil }

func (p *tunPlane) lockedDown() bool { return false }

// OpenLockdown has nothing to open where there is no kill switch.
func OpenLockdown(string) (*http.Client, error) { return nil, nil }

// SealLockdown has nothing to seal either.
func SealLockdown(string) error { return nil }

func (p *tunPlane) allowEndpoints(flows) error { return nil }

func (p *tunPlane) allowAPI(bool) error { return nil }

func (p *tunPlane) apiHTTP() *http.Client { return nil }

func (p *tunPlane) setAPI([]netip.AddrPort) {}

func (p *tunPlane) setDNS([]netip.Addr) error { return nil }

func undo(string, *record) error { return nil }

func (p *tunPlane) openPortal(time.Time) error { return nil }

func (p *tunPlane) sealPortal([]netip.Addr) error { return nil }

func openPortalLockdown(string, time.Duration) (time.Time, error) {
	return time.Time{}, ErrNotConnected
}

func removeKillSwitch() error { return nil }
