package client

import (
	"fmt"
	"strings"

	"veil/internal/apitypes"
)

// WGConfig renders a wg-quick(8) file for the saved device and a gateway,
// for routers, phones and the official WireGuard apps. All traffic, IPv4
// and IPv6, goes through the tunnel, and DNS goes to the gateway's own
// resolver inside it.
func WGConfig(st *State, srv apitypes.Server) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Veil gateway %s (%s)\n", srv.Name, srv.Location)
	b.WriteString("[Interface]\n")
	fmt.Fprintf(&b, "PrivateKey = %s\n", st.PrivateKey)
	fmt.Fprintf(&b, "Address = %s, %s\n", st.IPv4, st.IPv6)
	fmt.Fprintf(&b, "DNS = %s, %s\n", srv.TunnelIPv4, srv.TunnelIPv6)
	b.WriteString("\n[Peer]\n")
	fmt.Fprintf(&b, "PublicKey = %s\n", srv.PublicKey)
	fmt.Fprintf(&b, "Endpoint = %s\n", srv.Endpoint)
	b.WriteString("AllowedIPs = 0.0.0.0/0, ::/0\n")
	b.WriteString("PersistentKeepalive = 25\n")
	return b.String()
}
