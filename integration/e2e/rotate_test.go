package e2e

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"veil/integration/harness"
	"veil/internal/client"
	"veil/internal/wg"
)

// TestKeyRotationInProcess rotates a proxy-mode tunnel's key twice on the
// built-in netstack gateway: the same device keeps its addresses, the
// control plane and the saved state hold the new key, the old key no
// longer handshakes, and the tunnel carries traffic after each rotation.
func TestKeyRotationInProcess(t *testing.T) {
	loop := netip.MustParseAddr("127.0.0.1")
	echo := harness.StartEcho(t, loop)
	env := harness.Start(t, harness.Options{})
	dir := t.TempDir()
	code := env.CreateAccount(t, 30)
	st := env.Login(t, dir, code)
	first := st.PrivateKey
	tun := env.Up(t, st, clientAddr)
	web := harness.SOCKSClient(t, tun.SOCKSAddr(), 20*time.Second)
	ctx := context.Background()
	seen := map[string]bool{first: true}
	for i := range 2 {
		if err := tun.RotateKey(ctx, dir); err != nil {
			t.Fatalf("rotation %d: %v", i+1, err)
		}
		if seen[st.PrivateKey] {
			t.Fatalf("rotation %d kept a key already used", i+1)
		}
		seen[st.PrivateKey] = true
		saved, err := client.LoadState(dir)
		if err != nil || saved.PrivateKey != st.PrivateKey || saved.KeyCreated.IsZero() {
			t.Fatalf("saved state after rotation %d: %+v, %v", i+1, saved, err)
		}
		priv, err := wg.ParseKey(st.PrivateKey)
		if err != nil {
			t.Fatal(err)
		}
		devs, err := env.API(loginToken(t, env, code)).Devices(ctx)
		if err != nil || len(devs) != 1 || devs[0].ID != st.DeviceID || devs[0].PublicKey != priv.Public().Base64() || devs[0].IPv4 != st.IPv4 {
			t.Fatalf("devices after rotation %d: %+v, %v", i+1, devs, err)
		}
		if got, err := harness.Get(web, echo.URL+"/"); err != nil || got != loop.String() {
			t.Fatalf("through the tunnel after rotation %d: %q, %v", i+1, got, err)
		}
	}
	// A tunnel with the first key is refused: the gateway dropped it.
	old := *st
	old.PrivateKey = first
	cfg := client.TunnelConfig{State: &old, Server: onlineServer(t, ctx, env.Svc.URL(), ""), Mode: client.ModeProxy,
		SOCKS: "127.0.0.1:0", HTTPProxy: "off", AllowLoopback: true, HandshakeTimeout: 3 * time.Second}
	t2, err := client.Up(ctx, cfg)
	if err == nil {
		t2.Close()
		t.Error("the key before the rotations still handshakes")
	} else if !errors.Is(err, client.ErrNoHandshake) {
		t.Errorf("a tunnel with the old key: %v, want no handshake", err)
	}
}

func loginToken(t *testing.T, env *harness.Env, code string) string {
	t.Helper()
	s, err := env.API("").Login(context.Background(), code)
	if err != nil {
		t.Fatal(err)
	}
	return s.Token
}
