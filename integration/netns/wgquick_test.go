//go:build linux

package netns

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestWGQuick is case (d): the official tools, Debian's wireguard-go under
// wg-quick, connect with the file `veil wg-config` writes and reach the
// internet host through `veil gateway --mode tun`, as a phone or router
// would through an operator's gateway.
func TestWGQuick(t *testing.T) {
	requireNetns(t, "wg-quick", "wireguard-go")
	tp := newTopo(t)
	gw := tp.startGateway(t, tunGateway)
	state := tp.login(t, gw)
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
	tp.checkExit(t)
}
