//go:build linux

package netns

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"veil/internal/client"
	"veil/internal/wg"
)

// TestPQ runs through each of Veil's gateways: `veil connect` agrees a
// post-quantum pre-shared key with the gateway and `veil status` says
// so; the gateway then needs it, since a client that lost it gets no
// handshake, and the same client with it connects again; --no-pq asks
// for none.
func TestPQ(t *testing.T) {
	requireNetns(t)
	for _, kind := range []gatewayKind{builtinGateway, tunGateway} {
		t.Run(string(kind), func(t *testing.T) { testPQ(t, kind) })
	}
}

func testPQ(t *testing.T, kind gatewayKind) {
	tp := newTopo(t)
	gw := tp.startGateway(t, kind)
	state := tp.login(t, gw)
	connect := func(extra ...string) ([]byte, error) {
		args := append([]string{tp.bin, "connect", "--mode", "tun", "--kill-switch=false", "--location", gw.location,
			"--state", state, "--timeout", "8s"}, extra...)
		return tp.in(tp.c, args...).CombinedOutput()
	}
	status := func() client.Status {
		t.Helper()
		var st client.Status
		if err := json.Unmarshal([]byte(tp.veil(t, tp.c, "status", "--json", "--state", state)), &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	disconnect := func() {
		t.Helper()
		if out := tp.veil(t, tp.c, "disconnect", "--state", state); out != "Disconnected" {
			t.Fatalf("disconnect said %q", out)
		}
	}

	if out, err := connect(); err != nil {
		t.Fatalf("connect: %v\n%s", err, out)
	}
	if st := status(); !st.QuantumResistant || st.HandshakeAge < 0 {
		t.Fatalf("status after connect = %+v, want quantum-resistant", st)
	}
	if out := tp.veil(t, tp.c, "status", "--state", state); !strings.Contains(out, "post-quantum:   yes") {
		t.Errorf("status does not say post-quantum: yes:\n%s", out)
	}
	tp.checkExit(t)
	saved := filepath.Join(state, "pq-psk")
	psk, err := os.ReadFile(saved)
	if err != nil {
		t.Fatalf("no saved pre-shared key: %v", err)
	}
	disconnect()

	// The gateway still holds the key: without it no handshake completes.
	if err := os.Remove(saved); err != nil {
		t.Fatal(err)
	}
	if out, err := connect(); err == nil {
		disconnect()
		t.Fatalf("connect without the pre-shared key the gateway holds succeeded:\n%s", out)
	}
	tp.in(tp.c, tp.bin, "disconnect", "--state", state).Run()
	if err := os.WriteFile(saved, psk, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := connect(); err != nil {
		t.Fatalf("connect with the saved pre-shared key: %v\n%s", err, out)
	}
	if st := status(); !st.QuantumResistant {
		t.Errorf("status after a reconnect = %+v, want quantum-resistant", st)
	}
	tp.checkExit(t)
	disconnect()

	t.Run("key rotation", func(t *testing.T) {
		before := loadState(t, state)
		// With the kill switch, which must let the exchange through.
		if out, err := connect("--kill-switch=true", "--key-rotation", "3s"); err != nil {
			t.Fatalf("connect: %v\n%s", err, out)
		}
		defer disconnect()
		waitNetns(t, 30*time.Second, "a rotation with a new pre-shared key", func() bool {
			after, err := client.LoadState(state)
			if err != nil || after.PrivateKey == before.PrivateKey {
				return false
			}
			priv, err := wg.ParseKey(after.PrivateKey)
			b, _ := os.ReadFile(saved)
			return err == nil && strings.HasPrefix(string(b), priv.Public().Base64()+" ") && status().QuantumResistant
		})
		tp.checkExit(t)
	})

	t.Run("no-pq", func(t *testing.T) {
		// A fresh device state: the gateway holds no key for it.
		os.Remove(saved)
		rotated := filepath.Join(tp.tmp, "client-nopq")
		code := tp.veil(t, tp.g, "admin", "account", "create", "--days", "30", "--control", control, "--data", gw.data)
		tp.veil(t, tp.c, "login", code, "--control", control, "--state", rotated)
		t.Cleanup(func() { tp.in(tp.c, tp.bin, "disconnect", "--state", rotated).Run() })
		state = rotated
		if out, err := connect("--no-pq"); err != nil {
			t.Fatalf("connect --no-pq: %v\n%s", err, out)
		}
		if st := status(); st.QuantumResistant {
			t.Errorf("status after connect --no-pq = %+v", st)
		}
		if out := tp.veil(t, tp.c, "status", "--state", state); !strings.Contains(out, "post-quantum:   no") {
			t.Errorf("status does not say post-quantum: no:\n%s", out)
		}
		tp.checkExit(t)
	})
}
