package gateway

import (
	"errors"
	"net/netip"
	"testing"

	"veil/internal/netguard"
)

// TestPermitUpstream: the resolver's upstreams get the egress guard's
// decision, with the tunnel pools refused even inside an allowed range,
// and nothing at all is permitted before the pools are known.
func TestPermitUpstream(t *testing.T) {
	control := newFakeControl(t)
	allow := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}
	g, err := New(Config{ControlURL: control.srv.URL, Token: testToken, EgressAllow: allow})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.PermitUpstream(netip.MustParseAddr("192.0.2.53")); !errors.Is(err, netguard.ErrDenied) {
		t.Errorf("before the pools are known: %v, want ErrDenied", err)
	}
	g.shutdown()

	g, _ = startGateway(t, control, allow, nil)
	for addr, ok := range map[string]bool{
		"127.0.0.1":       true, // opened by the allow list
		"10.0.0.1":        true,
		"10.64.0.2":       false, // a peer's tunnel address, inside the allowed 10/8
		"10.64.0.1":       false, // the gateway's own
		"169.254.169.254": false,
		"fd00::1":         false,
		"8.8.8.8":         true,
	} {
		if err := g.PermitUpstream(netip.MustParseAddr(addr)); (err == nil) != ok {
			t.Errorf("PermitUpstream(%s) = %v, want allowed %v", addr, err, ok)
		}
	}
}
