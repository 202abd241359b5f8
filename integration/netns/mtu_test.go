//go:build linux

package netns

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"veil/internal/client"
)

// narrowMTU is the MTU of the link between client and gateway in
// TestPathMTUProbe: a 1420-byte tunnel packet (1480 bytes with the
// WireGuard, UDP and IPv4 headers) does not fit, one of 1280 does.
const narrowMTU = 1380

// narrowPath puts a bridge namespace between the client and the gateway
// host whose ports have an MTU of mtu while the hosts' own ends stay at
// 1500: a frame too large for a port is dropped on arrival, and a bridge
// sends no ICMP. The hosts' addresses and routes are as newTopo made them.
func (tp *topo) narrowPath(t *testing.T, mtu int) {
	t.Helper()
	br := "vb" + strings.TrimPrefix(tp.c, "vc")
	run(t, "ip", "netns", "add", br)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", br).Run() })
	run(t, "ip", "-n", tp.c, "link", "del", "c0")
	run(t, "ip", "-n", tp.c, "link", "add", "c0", "type", "veth", "peer", "name", "b0", "netns", br)
	run(t, "ip", "-n", tp.g, "link", "add", "g0", "type", "veth", "peer", "name", "b1", "netns", br)
	run(t, "ip", "-n", br, "link", "add", "br0", "type", "bridge")
	for _, dev := range []string{"b0", "b1"} {
		run(t, "ip", "-n", br, "link", "set", dev, "mtu", fmt.Sprint(mtu), "master", "br0", "up")
	}
	run(t, "ip", "-n", br, "link", "set", "br0", "up")
	for _, h := range []struct{ ns, dev, a4, a6 string }{{tp.c, "c0", client4, client6}, {tp.g, "g0", gwIn4, gwIn6}} {
		run(t, "ip", "-n", h.ns, "addr", "add", h.a4+"/24", "dev", h.dev)
		run(t, "ip", "-n", h.ns, "addr", "add", h.a6+"/64", "dev", h.dev, "nodad")
		// One segment per buffer: a UDP GSO buffer would cross the
		// bridge unchecked against its ports' MTU and be cut into
		// packets only past it, hiding the narrow link.
		run(t, "ip", "-n", h.ns, "link", "set", h.dev, "gso_max_segs", "1", "up")
	}
	run(t, "ip", "-n", tp.c, "route", "add", "default", "via", gwIn4)
	run(t, "ip", "-n", tp.c, "-6", "route", "add", "default", "via", gwIn6)
}

// download fetches the bulk role's body from the client namespace
// through the tunnel and returns how many bytes came, or why not.
func (tp *topo) download(maxTime time.Duration) (string, error) {
	var out []byte
	var err error
	for range 50 { // the bulk role may still be starting
		out, err = tp.in(tp.c, "curl", "-sS", "-o", "/dev/null", "-w", "%{size_download}",
			"--connect-timeout", "5", "--max-time", fmt.Sprint(int(maxTime.Seconds())),
			fmt.Sprintf("http://%s:8090/", inet4)).Output()
		if err == nil || !strings.Contains(err.Error(), "exit status 7") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return strings.TrimSpace(string(out)), err
}

// TestPathMTUProbe: between client and gateway a link narrower than the
// tunnel's default MTU needs, that drops what does not fit without a
// word. The client probes the path, sets its TUN's MTU below 1420 and
// `veil status` says so, and a download of several megabytes through the
// tunnel completes. With --mtu 1420 forced, full-sized packets vanish and
// the same download does not complete: the probe is what saves it.
func TestPathMTUProbe(t *testing.T) {
	requireNetns(t, "curl")
	for _, kind := range []gatewayKind{builtinGateway, tunGateway} {
		t.Run(string(kind), func(t *testing.T) {
			tp := newTopo(t)
			tp.narrowPath(t, narrowMTU)
			tp.start(t, tp.i, []string{"VEIL_NETNS_ROLE=bulk"}, tp.self)
			gw := tp.startGateway(t, kind)
			state := tp.login(t, gw)

			tp.veil(t, tp.c, "connect", "--mode", "tun", "--location", gw.location, "--state", state, "--timeout", "15s")
			var st client.Status
			if err := json.Unmarshal([]byte(tp.veil(t, tp.c, "status", "--json", "--state", state)), &st); err != nil {
				t.Fatal(err)
			}
			// What fits: the link's MTU less the outer headers (60),
			// as WireGuard pads to 16 bytes.
			if st.MTU < client.MinMTU || st.MTU > narrowMTU-60 {
				t.Fatalf("veil status says MTU %d; want one from %d to %d", st.MTU, client.MinMTU, narrowMTU-60)
			}
			t.Logf("probed MTU %d", st.MTU)
			if link := tp.runIn(t, tp.c, "ip", "link", "show", "veil0"); !strings.Contains(link, fmt.Sprintf(" mtu %d ", st.MTU)) {
				t.Fatalf("veil0 has not the MTU status shows (%d): %s", st.MTU, link)
			}
			if text := tp.veil(t, tp.c, "status", "--state", state); !strings.Contains(text, fmt.Sprintf("MTU:            %d", st.MTU)) {
				t.Errorf("veil status does not show the MTU:\n%s", text)
			}
			if got, err := tp.download(30 * time.Second); err != nil || got != fmt.Sprint(bulkSize) {
				t.Fatalf("download through the tunnel with MTU %d over a %d-byte link: %v, %s of %d bytes", st.MTU, narrowMTU, err, got, bulkSize)
			}
			tp.disconnect(t, state)

			tp.veil(t, tp.c, "connect", "--mode", "tun", "--location", gw.location, "--state", state, "--timeout", "15s", "--mtu", "1420")
			if got, err := tp.download(8 * time.Second); err == nil && got == fmt.Sprint(bulkSize) {
				t.Fatal("with --mtu 1420 the download over the narrow link completed: the test shows no black hole")
			}
		})
	}
}
