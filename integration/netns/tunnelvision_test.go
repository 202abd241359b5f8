//go:build linux

package netns

import (
	"strings"
	"testing"
)

// TestTunnelVision: after a tun-mode connect, the client's LAN pushes
// routes more specific than the default (what DHCP option 121 from a
// rogue router would: 0.0.0.0/1 and 128.0.0.0/1, and their IPv6
// halves) via the LAN's next hop. Traffic to the internet host must
// still exit from the gateway's address, and no packet addressed to the
// internet host may leave on the client's LAN link, with the kill switch
// on or off. A main-table suppress rule, as earlier versions left, goes
// with `veil disconnect`.
func TestTunnelVision(t *testing.T) {
	requireNetns(t)
	for _, ks := range []string{"--kill-switch=true", "--kill-switch=false"} {
		t.Run(strings.TrimPrefix(ks, "--"), func(t *testing.T) {
			tp := newTopo(t)
			gw := tp.startGateway(t, tunGateway)
			state := tp.login(t, gw)
			tp.veil(t, tp.c, "connect", "--mode", "tun", ks, "--location", gw.location, "--state", state, "--timeout", "15s")

			tp.runIn(t, tp.c, "ip", "route", "add", "0.0.0.0/1", "via", gwIn4, "dev", "c0")
			tp.runIn(t, tp.c, "ip", "route", "add", "128.0.0.0/1", "via", gwIn4, "dev", "c0")
			tp.runIn(t, tp.c, "ip", "-6", "route", "add", "::/1", "via", gwIn6, "dev", "c0")
			tp.runIn(t, tp.c, "ip", "-6", "route", "add", "8000::/1", "via", gwIn6, "dev", "c0")

			stop := tp.captureFilter(t, "host "+inet4+" or host "+inet6)
			tp.checkExit(t)
			if leaked := stop(); len(leaked) > 0 {
				t.Fatalf("%d packets to the internet host left on the LAN link:\n%s", len(leaked), strings.Join(leaked, "\n"))
			}
			for _, fam := range []string{"-4", "-6"} {
				if r := tp.runIn(t, tp.c, "ip", fam, "rule", "show"); strings.Contains(r, "suppress_prefixlength") {
					t.Errorf("ip %s rule while connected has a suppress rule:\n%s", fam, r)
				}
				tp.runIn(t, tp.c, "ip", fam, "rule", "add", "priority", "32764", "table", "main", "suppress_prefixlength", "0")
			}
			tp.disconnect(t, state)
			for _, fam := range []string{"-4", "-6"} {
				if r := tp.runIn(t, tp.c, "ip", fam, "rule", "show"); strings.Contains(r, "32764") || strings.Contains(r, "32765") {
					t.Errorf("ip %s rule after disconnect:\n%s", fam, r)
				}
			}
		})
	}
}
