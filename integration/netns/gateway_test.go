//go:build linux

package netns

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"veil/internal/apitypes"
)

// standin is a gateway made of Debian's wireguard-go, kernel forwarding
// and an nftables masquerade, driven through the control plane's gateway
// API by the test. It stands in for Veil's own gateway in builds where
// `veil serve` has none yet; the client side under test is the same.
type standin struct {
	tp    *topo
	cmd   *exec.Cmd
	token string
	priv  string
	pub   string
}

const standinIf = "vsw0"

func (tp *topo) startStandin(t testing.TB, data string) *standin {
	t.Helper()
	if _, err := exec.LookPath("wireguard-go"); err != nil {
		t.Skip("no gateway: this build's veil serve has none and wireguard-go is not installed")
	}
	s := &standin{tp: tp}
	s.token = tp.veil(t, tp.g, "admin", "gateway", "add", "standin", "--location", "zz-sbx",
		"--endpoint", gwIn4+":51821", "--control", control, "--data", data)
	s.priv = strings.TrimSpace(run(t, "wg", "genkey"))
	pub := exec.Command("wg", "pubkey")
	pub.Stdin = strings.NewReader(s.priv)
	b, err := pub.Output()
	if err != nil {
		t.Fatal(err)
	}
	s.pub = strings.TrimSpace(string(b))
	s.cmd = tp.start(t, tp.g, []string{"WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1"}, "wireguard-go", "-f", standinIf)
	for i := 0; tp.in(tp.g, "ip", "link", "show", standinIf).Run() != nil; i++ {
		if i == 100 {
			t.Fatal("wireguard-go made no interface")
		}
		time.Sleep(20 * time.Millisecond)
	}
	keyFile := filepath.Join(tp.tmp, "standin.key")
	os.WriteFile(keyFile, []byte(s.priv), 0o600)
	tp.runIn(t, tp.g, "wg", "set", standinIf, "private-key", keyFile, "listen-port", "51821")
	tp.runIn(t, tp.g, "ip", "addr", "add", "10.64.0.1/10", "dev", standinIf)
	tp.runIn(t, tp.g, "ip", "addr", "add", "fd7a:7665:696c::1/64", "dev", standinIf, "nodad")
	tp.runIn(t, tp.g, "ip", "link", "set", standinIf, "up")
	tp.runIn(t, tp.g, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	tp.runIn(t, tp.g, "nft", "add table inet vsnat; add chain inet vsnat post { type nat hook postrouting priority 100 ; } ; add rule inet vsnat post oifname g1 masquerade")
	return s
}

// sync reports the stand-in's key (which makes it online) and installs
// the whole peer map.
func (s *standin) sync(t testing.TB) {
	t.Helper()
	body := fmt.Sprintf(`{"public_key":%q}`, s.pub)
	if out, err := s.tp.httpIn(s.tp.g, "POST", control+"/api/v1/gateway/report", s.token, body); err != nil {
		t.Fatalf("stand-in report: %v %s", err, out)
	}
	out, err := s.tp.httpIn(s.tp.g, "GET", control+"/api/v1/gateway/peers?since=0", s.token, "")
	if err != nil {
		t.Fatalf("stand-in peer map: %v %s", err, out)
	}
	var m apitypes.PeerMap
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Peers {
		s.tp.runIn(t, s.tp.g, "wg", "set", standinIf, "peer", p.PublicKey, "allowed-ips", strings.Join(p.AllowedIPs, ","))
	}
}

// prepare makes the gateway ready for the logged-in client.
func (gw *gateway) prepare(t testing.TB) {
	if gw.standin != nil {
		gw.standin.sync(t)
	}
}

// kill stops the gateway's data plane at once.
func (gw *gateway) kill(t testing.TB) {
	t.Helper()
	procs := []*exec.Cmd{gw.serve}
	if gw.extra != nil {
		procs = append(procs, gw.extra)
	}
	if gw.standin != nil {
		procs = append(procs, gw.standin.cmd)
	}
	for _, p := range procs {
		p.Process.Signal(syscall.SIGKILL)
		p.Wait()
	}
	if gw.standin != nil {
		gw.standin.tp.in(gw.standin.tp.g, "ip", "link", "del", standinIf).Run()
	}
}

// TestWGQuick is case (d): the official tools, Debian's wireguard-go under
// wg-quick, connect with the file `veil wg-config` writes and reach the
// internet host through the gateway.
func TestWGQuick(t *testing.T) {
	requireNetns(t)
	for _, tool := range []string{"wg-quick", "wireguard-go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (scripts/test-deps.sh)", tool)
		}
	}
	tp := newTopo(t)
	gw := tp.startGateway(t)
	state := filepath.Join(tp.tmp, "client")
	tp.login(t, gw.data, state)
	gw.prepare(t)
	conf := tp.veil(t, tp.c, "wg-config", "--location", gw.location, "--state", state)
	if _, err := exec.LookPath("resolvconf"); err != nil {
		// wg-quick hands DNS = to resolvconf(8); without it, it fails.
		var kept []string
		for _, l := range strings.Split(conf, "\n") {
			if !strings.HasPrefix(strings.TrimSpace(l), "DNS") {
				kept = append(kept, l)
			}
		}
		conf = strings.Join(kept, "\n")
		t.Log("resolvconf is not installed: DNS line dropped from the wg-quick file")
	}
	file := filepath.Join(tp.tmp, "vq0.conf")
	if err := os.WriteFile(file, []byte(conf+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go", "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1"}
	up := tp.in(tp.c, "wg-quick", "up", file)
	up.Env = append(os.Environ(), env...)
	if out, err := up.CombinedOutput(); err != nil {
		t.Fatalf("wg-quick up: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		down := tp.in(tp.c, "wg-quick", "down", file)
		down.Env = append(os.Environ(), env...)
		down.Run()
	})
	for _, tc := range []struct{ url, want string }{
		{"http://" + inet4 + "/", gwOut4},
		{"http://[" + inet6 + "]/", gwOut6},
	} {
		got, err := tp.httpIn(tp.c, "GET", tc.url, "-", "")
		if err != nil {
			t.Fatalf("GET %s through wg-quick: %v", tc.url, err)
		}
		if got != tc.want {
			t.Errorf("GET %s: internet host saw %q, want the gateway's %s", tc.url, got, tc.want)
		}
	}
}
