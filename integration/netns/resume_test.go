//go:build linux

package netns

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"veil/internal/client"
)

// TestResume: the kill switch that a dead connection leaves on, after the
// client was SIGKILLed or after a connect that failed, is taken over by
// the next `veil connect`, which reaches the control plane through it and
// brings the tunnel back without lifting it, or, when it fails, leaves it
// letting out nothing; meanwhile nothing leaves the client but the
// WireGuard flow and its own requests to the control plane. Only `veil
// disconnect` lifts it.
func TestResume(t *testing.T) {
	requireNetns(t)
	tp := newTopo(t)
	gw := tp.startGateway(t, builtinGateway)
	state := tp.login(t, gw)
	connect := func(timeout string) (string, error) {
		out, err := tp.in(tp.c, tp.bin, "connect", "--mode", "tun", "--location", gw.location,
			"--state", state, "--timeout", timeout).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	holder := func() int {
		t.Helper()
		var st client.Status
		if err := json.Unmarshal([]byte(tp.veil(t, tp.c, "status", "--json", "--state", state)), &st); err != nil {
			t.Fatal(err)
		}
		if !st.KillSwitch || st.PID == 0 {
			t.Fatalf("status = %+v, want a holder with the kill switch", st)
		}
		return st.PID
	}
	// Outside the tunnel only WireGuard to the gateway and TCP to the
	// control plane (from the holder's marked sockets) may leave.
	capture := func() func() []string {
		return tp.captureFilter(t, fmt.Sprintf("not arp and not (udp and host %s and port %s) "+
			"and not (tcp and host %s and port 8080) and not (icmp6 and ip6[40] >= 133 and ip6[40] <= 136)",
			gwIn4, gw.port, gwIn4))
	}
	noLeaks := func(stop func() []string) {
		t.Helper()
		if leaked := stop(); len(leaked) > 0 {
			t.Fatalf("%d packets left the client outside the tunnel:\n%s", len(leaked), strings.Join(leaked, "\n"))
		}
	}

	if out, err := connect("15s"); err != nil {
		t.Fatalf("connect: %v: %s", err, out)
	}
	first := holder()

	t.Run("after SIGKILL", func(t *testing.T) {
		stop := capture()
		sigkill(t, first)
		tp.probe(t)
		out, err := connect("15s")
		if err != nil {
			t.Fatalf("connect over the dead connection's kill switch: %v: %s", err, out)
		}
		tp.probe(t)
		noLeaks(stop)
		if pid := holder(); pid == first {
			t.Fatalf("the holder is still pid %d", pid)
		}
		tp.checkExit(t)
	})

	t.Run("after a failed takeover", func(t *testing.T) {
		// The takeover reaches the control plane through the left kill
		// switch, finds no gateway where it is asked to go, and must
		// leave the kill switch as tight as it found it.
		sigkill(t, holder())
		stop := capture()
		out, err := tp.in(tp.c, tp.bin, "connect", "--mode", "tun", "--location", "nowhere",
			"--state", state, "--timeout", "5s").CombinedOutput()
		if err == nil {
			t.Fatalf("connect to a location without gateways succeeded: %s", out)
		}
		if !strings.Contains(string(out), "kill switch stays on") {
			t.Errorf("a failed takeover said %q, not that the kill switch stays", out)
		}
		rules, err := tp.in(tp.c, "nft", "list", "table", "inet", "veil").Output()
		if err != nil {
			t.Fatalf("a failed takeover removed the kill switch: %v", err)
		}
		if strings.Contains(string(rules), "tcp") {
			t.Errorf("after a failed takeover the kill switch still lets TCP out:\n%s", rules)
		}
		tp.probe(t)
		noLeaks(stop)
		if out, err := connect("15s"); err != nil {
			t.Fatalf("connect after a failed takeover: %v: %s", err, out)
		}
		tp.checkExit(t)
	})

	t.Run("after a failed connect", func(t *testing.T) {
		tp.disconnect(t, state)
		// The gateway's WireGuard port stops answering; its control
		// plane goes on.
		tp.runIn(t, tp.g, "nft", "add table inet vtblock; add chain inet vtblock in { type filter hook input priority 0 ; } ; add rule inet vtblock in udp dport "+gw.port+" drop")
		stop := capture()
		out, err := connect("3s")
		if err == nil {
			t.Fatalf("connect succeeded with the gateway's port blocked: %s", out)
		}
		if !strings.Contains(out, "kill switch stays on") {
			t.Errorf("a failed connect said %q, not that the kill switch stays", out)
		}
		if !tp.killSwitchPresent(t) {
			t.Fatal("a failed connect removed the kill switch")
		}
		tp.probe(t)
		noLeaks(stop)
		if out := tp.veil(t, tp.c, "status", "--state", state+"-none"); !strings.Contains(out, "Not connected") {
			t.Fatalf("status with another state dir: %q", out)
		}
		if _, err := tp.in(tp.c, tp.bin, "status", "--state", state).Output(); err == nil {
			t.Error("status after a failed connect exits 0, want the kill switch reported")
		}

		tp.runIn(t, tp.g, "nft", "delete table inet vtblock")
		stop = capture()
		if out, err := connect("15s"); err != nil {
			t.Fatalf("connect after a failed one: %v: %s", err, out)
		}
		noLeaks(stop)
		tp.checkExit(t)
	})

	t.Run("damaged record", func(t *testing.T) {
		// A crash, then a record that no longer reads (a full disk, a
		// hand edit): disconnect must still lift the kill switch.
		sigkill(t, holder())
		if err := os.WriteFile(filepath.Join(state, "connection.json"), []byte(`{"pid": 12`), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := connect("15s"); err == nil || !strings.Contains(out, "veil disconnect") {
			t.Errorf("connect over a damaged record: %v: %q, want an error naming `veil disconnect`", err, out)
		}
		if !tp.killSwitchPresent(t) {
			t.Fatal("the kill switch went with the damaged record")
		}
	})

	tp.disconnect(t, state)
}
