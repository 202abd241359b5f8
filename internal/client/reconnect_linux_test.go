package client

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
)

// TestRefreshControl: a working tun-mode tunnel learns where the control
// plane is now, for a later reconnect that cannot resolve names; a failed
// lookup keeps what was known.
func TestRefreshControl(t *testing.T) {
	old := []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:443")}
	moved := []netip.AddrPort{netip.MustParseAddrPort("198.51.100.9:443"), netip.MustParseAddrPort("[2001:db8::9]:443")}
	tun := &Tunnel{tun: &tunPlane{api: old}, cfg: TunnelConfig{State: &State{Control: "https://veil.example"}}}
	var asked []string
	tun.lookupControl = func(_ context.Context, control string) ([]netip.AddrPort, error) {
		asked = append(asked, control)
		return moved, nil
	}
	tun.refreshControl(context.Background())
	if !slices.Equal(tun.tun.api, moved) || !slices.Equal(asked, []string{"https://veil.example"}) {
		t.Fatalf("after a refresh: api %v (asked %v), want %v", tun.tun.api, asked, moved)
	}
	for _, fail := range []func(context.Context, string) ([]netip.AddrPort, error){
		func(context.Context, string) ([]netip.AddrPort, error) { return nil, errors.New("no such host") },
		func(context.Context, string) ([]netip.AddrPort, error) { return nil, nil },
	} {
		tun.lookupControl = fail
		tun.refreshControl(context.Background())
		if !slices.Equal(tun.tun.api, moved) {
			t.Errorf("a failed lookup changed the known addresses to %v", tun.tun.api)
		}
	}
}
