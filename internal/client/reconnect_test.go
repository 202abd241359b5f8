package client

import (
	"context"
	"net/netip"
	"testing"

	"veil/internal/apitypes"
)

// TestResolveEndpointTunMode: reconnecting in tun mode, where the system
// resolver sits behind the tunnel, a named endpoint is reached through
// the addresses the control plane resolved, and never looked up locally.
func TestResolveEndpointTunMode(t *testing.T) {
	tun := &Tunnel{tun: &tunPlane{}}
	for _, tt := range []struct {
		name string
		srv  apitypes.Server
		want string // "" for an error
	}{
		{"address", apitypes.Server{Endpoint: "198.51.100.7:51820"}, "198.51.100.7:51820"},
		{"mapped address", apitypes.Server{Endpoint: "[::ffff:198.51.100.7]:51820"}, "198.51.100.7:51820"},
		{"name resolved by the control plane", apitypes.Server{Endpoint: "localhost:51820",
			EndpointAddrs: []string{"garbage", "[2001:db8::7]:51820"}}, "[2001:db8::7]:51820"},
		// localhost would resolve locally: it must not be.
		{"name not resolved", apitypes.Server{Endpoint: "localhost:51820"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tun.resolveEndpoint(context.Background(), tt.srv)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("resolved to %v, want an error", got)
				}
				return
			}
			if err != nil || got != netip.MustParseAddrPort(tt.want) {
				t.Errorf("got %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}
