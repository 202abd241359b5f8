//go:build linux

package netns

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"veil/internal/client"
)

// The multihop topology: client — entry — exit — internet, each link its
// own /24. The entry runs `veil serve` (control plane and built-in
// gateway); the exit a `veil gateway`. The entry forwards IP, so a client
// that went to the exit directly would reach it, and show the exit its
// address: the captures on the exit's side would see it.
const (
	hopEntry4, hopExit4 = "203.0.113.1", "203.0.113.2" // entry—exit link
	exitPort            = "51822"
)

func newHopTopo(t *testing.T) (tp *topo, exitNS string) {
	t.Helper()
	var b [3]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	tp = &topo{c: "vc" + id, g: "ve" + id, i: "vi" + id, tmp: t.TempDir()}
	exitNS = "vx" + id
	var err error
	if tp.self, err = os.Executable(); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{tp.c, tp.g, exitNS, tp.i} {
		tp.addNS(t, ns)
	}
	run(t, "ip", "-n", tp.c, "link", "add", "c0", "type", "veth", "peer", "name", "g0", "netns", tp.g)
	run(t, "ip", "-n", tp.g, "link", "add", "h0", "type", "veth", "peer", "name", "h1", "netns", exitNS)
	run(t, "ip", "-n", exitNS, "link", "add", "g1", "type", "veth", "peer", "name", "i0", "netns", tp.i)
	for _, a := range []struct{ ns, dev, addr string }{
		{tp.c, "c0", client4}, {tp.g, "g0", gwIn4}, {tp.g, "h0", hopEntry4},
		{exitNS, "h1", hopExit4}, {exitNS, "g1", gwOut4}, {tp.i, "i0", inet4},
	} {
		run(t, "ip", "-n", a.ns, "addr", "add", a.addr+"/24", "dev", a.dev)
		run(t, "ip", "-n", a.ns, "link", "set", a.dev, "up")
	}
	run(t, "ip", "-n", tp.c, "route", "add", "default", "via", gwIn4)
	run(t, "ip", "-n", exitNS, "route", "add", "192.0.2.0/24", "via", hopEntry4)
	run(t, "ip", "-n", tp.i, "route", "add", "default", "via", gwOut4)
	run(t, "ip", "netns", "exec", tp.g, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	tp.build(t)
	return tp, exitNS
}

// TestMultihop connects with --via the entry and --location the exit:
// the internet host sees the exit's address; nothing on the exit's links
// carries the client's address; the entry sends the exit nothing but UDP
// to its WireGuard port. Then, as the control, a direct connection to the
// exit, which the same capture must catch.
func TestMultihop(t *testing.T) {
	requireNetns(t)
	tp, exitNS := newHopTopo(t)
	data := filepath.Join(tp.tmp, "serve")
	tp.startServe(t, data)
	token := tp.veil(t, tp.g, "admin", "gateway", "add", "exit", "--location", "zz-ext",
		"--endpoint", hopExit4+":"+exitPort, "--control", control, "--data", data)
	tp.start(t, exitNS, []string{"VEIL_TOKEN=" + token}, tp.bin, "gateway", "--control", control,
		"--mode", "netstack", "--wg-port", exitPort, "--egress-allow", "198.51.100.0/24")
	for i := 0; tp.onlineServer(t, "exit") == nil; i++ {
		if i == 100 {
			t.Fatal("the exit gateway did not come online")
		}
		time.Sleep(100 * time.Millisecond)
	}
	state := tp.login(t, &gateway{data: data})

	// Everything on the exit's two links that names the client.
	exitSaw := []func() []string{
		tp.captureOn(t, exitNS, "h1", "inout", "host "+client4),
		tp.captureOn(t, exitNS, "g1", "inout", "host "+client4),
	}
	// What reaches the exit from the entry: must be WireGuard's UDP.
	relayed := tp.captureOn(t, exitNS, "h1", "in", "ip and udp and src host "+hopEntry4+" and dst port "+exitPort)
	// What the entry sends the exit, but the control plane's answers.
	entrySent := tp.captureOn(t, tp.g, "h0", "out", "ip and not (tcp and src port 8080)")

	out := tp.veil(t, tp.c, "connect", "--mode", "tun", "--via", "builtin", "--location", "exit",
		"--state", state, "--timeout", "15s")
	t.Logf("connect: %s", out)
	if !strings.Contains(out, "via builtin") {
		t.Errorf("connect said %q, want it to name the entry", out)
	}
	var st client.Status
	if err := json.Unmarshal([]byte(tp.veil(t, tp.c, "status", "--json", "--state", state)), &st); err != nil {
		t.Fatal(err)
	}
	ep, err := netip.ParseAddrPort(st.Endpoint)
	if err != nil || st.Via != "builtin" || st.Gateway != "exit" || ep.Addr().String() != gwIn4 ||
		ep.Port() == 51820 || st.Transport != "udp" || st.HandshakeAge < 0 || !st.KillSwitch {
		t.Fatalf("status after connect = %+v", st)
	}
	if s := tp.veil(t, tp.c, "status", "--state", state); !strings.Contains(s, "via builtin") {
		t.Errorf("status does not say via builtin:\n%s", s)
	}

	got, err := tp.httpIn(tp.c, "GET", "http://"+inet4+"/", "-", "")
	if err != nil {
		t.Fatalf("GET through the tunnel: %v", err)
	}
	if got != gwOut4 {
		t.Errorf("the internet host saw %q, want the exit's %s", got, gwOut4)
	}

	for i, stop := range exitSaw {
		if seen := stop(); len(seen) > 0 {
			t.Errorf("capture %d on the exit saw the client's address:\n%s", i, strings.Join(seen, "\n"))
		}
	}
	if seen := relayed(); len(seen) == 0 {
		t.Error("no UDP from the entry reached the exit's WireGuard port: the tunnel did not go through the relay")
	}
	for _, l := range entrySent() {
		if strings.Contains(l, inet4) || !strings.Contains(l, "> "+hopExit4+"."+exitPort+": UDP") {
			t.Errorf("the entry sent the exit something other than WireGuard's UDP: %s", l)
		}
	}

	t.Run("control: a direct connection shows the exit the client", func(t *testing.T) {
		tp.disconnect(t, state)
		stop := tp.captureOn(t, exitNS, "h1", "in", "host "+client4)
		tp.veil(t, tp.c, "connect", "--mode", "tun", "--location", "exit", "--state", state, "--timeout", "15s")
		tp.httpIn(tp.c, "GET", "http://"+inet4+"/", "-", "")
		if seen := stop(); len(seen) == 0 {
			t.Fatal("the exit's capture saw nothing of a direct connection: the capture above proves nothing")
		}
	})
}
