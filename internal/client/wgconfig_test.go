package client

import (
	"errors"
	"strings"
	"testing"

	"veil/internal/apitypes"
)

func TestPickServer(t *testing.T) {
	servers := []apitypes.Server{
		{Name: "se1", Location: "se-sto", Country: "se", Load: 50, Online: true, PublicKey: "k"},
		{Name: "se2", Location: "se-got", Country: "se", Load: 10, Online: true, PublicKey: "k"},
		{Name: "se3", Location: "se-got", Country: "se", Load: 0, Online: false, PublicKey: "k"},
		{Name: "de1", Location: "de-fra", Country: "de", Load: 5, Online: true, PublicKey: "k"},
		{Name: "nl1", Location: "nl-ams", Country: "nl", Load: 0, Online: true}, // never reported a key
	}
	tests := []struct{ loc, want string }{
		{"", "de1"},
		{"se", "se2"},
		{"SE-STO", "se1"},
		{"se1", "se1"},
		{"nl", ""},
		{"us", ""},
	}
	for _, tt := range tests {
		got, err := PickServer(servers, tt.loc)
		if tt.want == "" {
			if !errors.Is(err, ErrNoServer) {
				t.Errorf("PickServer(%q) = %s, %v; want ErrNoServer", tt.loc, got.Name, err)
			}
			continue
		}
		if err != nil || got.Name != tt.want {
			t.Errorf("PickServer(%q) = %s, %v; want %s", tt.loc, got.Name, err, tt.want)
		}
	}
}

func TestWGConfig(t *testing.T) {
	d := apitypes.Device{Name: "phone\n[Peer]", IPv4: "10.64.0.2/32", IPv6: "fd7a:7665:696c::2/128"}
	srv := apitypes.Server{Name: "se1", Location: "se-sto", PublicKey: "PUB=", Endpoint: "198.51.100.1:51820",
		TunnelIPv4: "10.64.0.1", TunnelIPv6: "fd7a:7665:696c::1"}
	got := WGConfig("PRIV=", d, srv)
	if strings.Count(got, "\n[Peer]\n") != 1 || !strings.HasPrefix(got, "# Veil device phone [Peer], gateway se1 (se-sto)\n") {
		t.Errorf("the device's name escaped its comment line:\n%s", got)
	}
	for _, want := range []string{
		"[Interface]\nPrivateKey = PRIV=\nAddress = 10.64.0.2/32, fd7a:7665:696c::2/128\nDNS = 10.64.0.1, fd7a:7665:696c::1\n",
		"[Peer]\nPublicKey = PUB=\nEndpoint = 198.51.100.1:51820\nAllowedIPs = 0.0.0.0/0, ::/0\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %q:\n%s", want, got)
		}
	}
}
