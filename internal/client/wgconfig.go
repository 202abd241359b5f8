package client

import (
	"context"
	"fmt"
	"strings"

	"veil/internal/apitypes"
	"veil/internal/wg"
)

// WGConfig renders a wg-quick(8) file for a device (its private key and
// addresses) and a gateway, for routers, phones and the official
// WireGuard apps. All traffic, IPv4 and IPv6, goes through the tunnel,
// and DNS goes to the gateway's own resolver inside it. The account
// page's script (web/static/devices.js) writes the same file.
func WGConfig(privateKey string, d apitypes.Device, srv apitypes.Server) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Veil device %s, gateway %s (%s)\n", oneLine(d.Name), srv.Name, srv.Location)
	b.WriteString("[Interface]\n")
	fmt.Fprintf(&b, "PrivateKey = %s\n", privateKey)
	fmt.Fprintf(&b, "Address = %s, %s\n", d.IPv4, d.IPv6)
	fmt.Fprintf(&b, "DNS = %s, %s\n", srv.TunnelIPv4, srv.TunnelIPv6)
	b.WriteString("\n[Peer]\n")
	fmt.Fprintf(&b, "PublicKey = %s\n", srv.PublicKey)
	fmt.Fprintf(&b, "Endpoint = %s\n", srv.Endpoint)
	b.WriteString("AllowedIPs = 0.0.0.0/0, ::/0\n")
	b.WriteString("PersistentKeepalive = 25\n")
	return b.String()
}

// oneLine keeps a device name from ending the comment it sits in.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// ExportDevice registers a new device named name with a key made here and
// returns its wg-quick file for srv. Each exported file is a device of its
// own: a phone and a router set up from two files are two devices, each
// removable alone, and neither holds this machine's key.
func ExportDevice(ctx context.Context, api *API, name string, srv apitypes.Server) (string, *apitypes.Device, error) {
	key, err := wg.GenerateKey()
	if err != nil {
		return "", nil, err
	}
	d, err := api.AddDevice(ctx, key.Public().Base64(), name)
	if err != nil {
		return "", nil, fmt.Errorf("registering device %q: %w", name, err)
	}
	return WGConfig(key.Base64(), *d, srv), d, nil
}
