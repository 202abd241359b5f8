package gateway

import (
	"net/netip"
	"testing"
)

// TestPublicEgress: only addresses that can appear on the internet are
// reported as a gateway's egress when none is configured.
func TestPublicEgress(t *testing.T) {
	for a, want := range map[string]bool{
		"203.0.113.9": true, "198.51.100.8": true, "2001:db8::8": true, "8.8.8.8": true,
		"10.1.2.3": false, "192.168.1.1": false, "172.16.0.1": false, "100.64.0.1": false,
		"127.0.0.1": false, "169.254.1.1": false, "fd7a:7665:696c::1": false, "fe80::1": false, "::1": false,
	} {
		if got := public(netip.MustParseAddr(a)); got != want {
			t.Errorf("public(%s) = %v, want %v", a, got, want)
		}
	}
	for _, a := range hostEgress() {
		if !public(a) {
			t.Errorf("hostEgress returned %s", a)
		}
	}
}
