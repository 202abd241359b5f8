package e2e

import (
	"context"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"veil/integration/harness"
	"veil/internal/apitypes"
	"veil/internal/client"
	"veil/internal/service"
	"veil/internal/wg"
)

// TestGatewayKeyChange shows that a holding client follows its gateway
// when the gateway comes back with another key and another endpoint: the
// service restarts on the same data directory and HTTP address, its
// built-in gateway with a new key on a new UDP port, and the client's
// SOCKS5 fetches work again without a new connect, status having said
// "reconnecting" while the gateway was away.
func TestGatewayKeyChange(t *testing.T) {
	loop := netip.MustParseAddr("127.0.0.1")
	echo := harness.StartEcho(t, loop)
	env := harness.Start(t, harness.Options{})
	dir := t.TempDir()
	st := env.Login(t, dir, env.CreateAccount(t, 30))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before := onlineServer(t, ctx, env.Svc.URL(), "")
	tun, err := client.Up(ctx, client.TunnelConfig{
		State: st, Server: before, Mode: client.ModeProxy,
		SOCKS: "127.0.0.1:0", HTTPProxy: "off", AllowLoopback: true, Dir: dir,
		Bind: harness.NewBind(clientAddr),
		// Far below WireGuard's 2 minute rekey, so that the test need not
		// wait minutes: the watcher then also looks at the list while all
		// is well, which changes nothing.
		StaleAfter:       4 * time.Second,
		HandshakeTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatalf("bringing the tunnel up: %v", err)
	}
	holdCtx, stopHold := context.WithCancel(context.Background())
	held := make(chan error, 1)
	go func() { held <- client.Hold(holdCtx, dir, tun) }()
	t.Cleanup(func() {
		stopHold()
		<-held
		tun.Close()
	})
	web := harness.SOCKSClient(t, tun.SOCKSAddr(), 5*time.Second)
	if _, err := harness.Get(web, echo.URL+"/"); err != nil {
		t.Fatalf("fetch through the tunnel before the change: %v", err)
	}

	// The gateway goes away: the holding process says so.
	cfg := env.Config
	cfg.HTTP = env.Svc.Addr().String()
	if err := env.Svc.Stop(); err != nil {
		t.Fatalf("stopping the service: %v", err)
	}
	waitStatus(t, dir, "reconnecting while the gateway is away", func(s *client.Status) bool {
		return s.State == client.StateReconnecting
	})

	// It comes back with another key (a key kept in the data directory
	// is replaced, should the service keep one) and another port.
	rotateKeyFiles(t, cfg.DataDir)
	svc, err := service.Start(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("restarting the service: %v", err)
	}
	t.Cleanup(func() { svc.Stop() })
	var after apitypes.Server
	waitUntil(t, 30*time.Second, "the restarted gateway listed with its new key", func() bool {
		s, err := client.PickServer(servers(ctx, svc.URL()), before.Name)
		after = s
		return err == nil && s.PublicKey != before.PublicKey
	})
	if after.Endpoint == before.Endpoint {
		t.Logf("the gateway kept its endpoint; only its key changed")
	}

	// No new connect: the same SOCKS5 proxy works again.
	waitUntil(t, 60*time.Second, "a fetch through the tunnel after the change", func() bool {
		_, err := harness.Get(web, echo.URL+"/")
		return err == nil
	})
	s := tun.Status()
	if s.Endpoint != after.Endpoint {
		t.Errorf("status endpoint = %s, want the gateway's new one", s.Endpoint)
	}
	if s.HandshakeAge < 0 {
		t.Errorf("no handshake with the gateway's new key: %+v", s)
	}
	waitStatus(t, dir, "connected after the change", func(s *client.Status) bool {
		return s.State == client.StateConnected
	})
}

// rotateKeyFiles replaces every WireGuard private key file in dir with a
// new key, leaving the service's own secrets alone.
func rotateKeyFiles(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch d.Name() {
		case service.SecretFile, service.AdminTokenFile:
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil || len(b) > 100 {
			return err
		}
		if _, err := wg.ParseKey(strings.TrimSpace(string(b))); err != nil {
			return nil
		}
		k, err := wg.GenerateKey()
		if err != nil {
			return err
		}
		return os.WriteFile(path, []byte(k.Base64()+"\n"), 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func servers(ctx context.Context, base string) []apitypes.Server {
	s, _ := (&client.API{Base: base}).Servers(ctx)
	return s
}

func onlineServer(t *testing.T, ctx context.Context, base, location string) apitypes.Server {
	t.Helper()
	s, err := client.PickServer(servers(ctx, base), location)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitStatus waits, at most 30 s, until the holding process's status
// satisfies ok.
func waitStatus(t *testing.T, dir, what string, ok func(*client.Status) bool) {
	t.Helper()
	waitUntil(t, 30*time.Second, what, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := client.QueryStatus(ctx, dir)
		if errors.Is(err, client.ErrNotConnected) {
			t.Fatalf("%s: the holding process is gone", what)
		}
		return err == nil && ok(s)
	})
}

// waitUntil polls cond until it holds, failing the test after limit.
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %s", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
