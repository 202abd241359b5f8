//go:build linux

package netns

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"veil/internal/client"
	"veil/internal/service"
	"veil/internal/wg"
)

// The role "reconnect-client" holds a tun-mode tunnel with the kill
// switch as `veil connect --foreground` does, but with a stale-handshake
// threshold of seconds instead of minutes, so that the test need not
// wait for WireGuard's rekey timer. It runs before TestMain (init), which
// this file cannot extend.
func init() {
	if os.Getenv("VEIL_NETNS_ROLE") != "reconnect-client" {
		return
	}
	if err := roleReconnectClient(os.Getenv("VEIL_STATE"), os.Getenv("VEIL_LOCATION")); err != nil {
		fmt.Fprintln(os.Stderr, "reconnect-client:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func roleReconnectClient(dir, location string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := client.LoadState(dir)
	if err != nil {
		return err
	}
	servers, err := (&client.API{Base: st.Control}).Servers(ctx)
	if err != nil {
		return err
	}
	srv, err := client.PickServer(servers, location)
	if err != nil {
		return err
	}
	tun, err := client.Up(ctx, client.TunnelConfig{
		State: st, Server: srv, Mode: client.ModeTUN, KillSwitch: true, Dir: dir,
		Location: location, StaleAfter: 3 * time.Second, HandshakeTimeout: 10 * time.Second,
	})
	if err != nil {
		return err
	}
	return client.Hold(ctx, dir, tun)
}

// TestReconnectKeyChange: a tun-mode client with the kill switch follows
// its gateway when `veil serve` restarts with a new gateway key on a new
// port, without a new connect, and meanwhile nothing leaves the client
// but the WireGuard flows (old and new endpoint) and its own requests to
// the control plane.
func TestReconnectKeyChange(t *testing.T) {
	requireNetns(t)
	tp := newTopo(t)
	gw := tp.startGateway(t, builtinGateway)
	state := tp.login(t, gw)
	tp.start(t, tp.c, []string{"VEIL_NETNS_ROLE=reconnect-client", "VEIL_STATE=" + state, "VEIL_LOCATION=" + gw.location}, tp.self)
	get := func() error {
		got, err := tp.httpIn(tp.c, "GET", "http://"+inet4+"/", "-", "")
		if err == nil && got != gwOut4 {
			err = fmt.Errorf("internet host saw %q", got)
		}
		return err
	}
	waitNetns(t, 30*time.Second, "the tunnel up", func() bool { return get() == nil })
	if !tp.killSwitchPresent(t) {
		t.Fatal("no kill switch")
	}
	before := tp.onlineServer(t, "builtin")

	stop := tp.captureFilter(t, fmt.Sprintf("not arp and not (udp and host %s and (port 51820 or port 51830)) "+
		"and not (tcp and dst host %s and dst port 8080) and not (icmp6 and ip6[40] >= 133 and ip6[40] <= 136)", gwIn4, gwIn4))
	gw.kill(t)
	tp.probe(t)
	rotateKeys(t, gw.data)
	tp.serveArgs = []string{"--endpoint", gwIn4 + ":51830", "--wg-port", "51830"}
	gw.serve = tp.startServe(t, gw.data)
	var after = before
	waitNetns(t, 30*time.Second, "the gateway back with a new key", func() bool {
		if s := tp.onlineServer(t, "builtin"); s != nil {
			after = s
		}
		return after.PublicKey != before.PublicKey
	})
	tp.probe(t)
	waitNetns(t, 90*time.Second, "the tunnel working again", func() bool { return get() == nil })
	tp.probe(t)
	if leaked := stop(); len(leaked) > 0 {
		t.Fatalf("%d packets left the client outside the tunnel:\n%s", len(leaked), strings.Join(leaked, "\n"))
	}
	if !tp.killSwitchPresent(t) {
		t.Fatal("kill switch gone after the reconnect")
	}
	out := tp.veil(t, tp.c, "status", "--state", state)
	if !strings.Contains(out, gwIn4+":51830") {
		t.Fatalf("status after the change:\n%s", out)
	}
	if out := tp.in(tp.c, "nft", "list", "table", "inet", "veil"); out != nil {
		b, _ := out.Output()
		if strings.Contains(string(b), "51820") || strings.Contains(string(b), "8080") {
			t.Fatalf("kill switch still lets out the old endpoint or the control plane:\n%s", b)
		}
	}
}

// rotateKeys replaces every WireGuard private key file in dir with a new
// key, should the service keep its gateway's key there.
func rotateKeys(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == service.SecretFile || d.Name() == service.AdminTokenFile {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil || len(b) > 100 {
			return nil
		}
		if _, err := wg.ParseKey(strings.TrimSpace(string(b))); err == nil {
			k, _ := wg.GenerateKey()
			os.WriteFile(path, []byte(k.Base64()+"\n"), 0o600)
		}
		return nil
	})
}

func waitNetns(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %s", what, limit)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
