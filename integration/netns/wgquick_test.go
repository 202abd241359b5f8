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
// would through an operator's gateway. The file's DNS line takes effect
// too: wg-quick hands it to resolvconf(8), here a minimal one that writes
// the namespace's own resolv.conf (what `ip netns exec` mounts over
// /etc/resolv.conf), and names are then answered by the gateway's
// resolver through the tunnel.
func TestWGQuick(t *testing.T) {
	requireNetns(t, "wg-quick", "wireguard-go", "dig")
	tp := newTopo(t)
	gw := tp.startGateway(t, tunGateway)
	state := tp.login(t, gw)
	conf := tp.veil(t, tp.c, "wg-config", "--location", gw.location, "--state", state)
	if !strings.Contains(conf, "DNS = ") {
		t.Fatalf("the wg-quick file names no resolver:\n%s", conf)
	}
	down := tp.wgQuickUp(t, "vq0", conf)
	downed := false
	t.Cleanup(func() {
		if !downed {
			down()
		}
	})
	tp.checkExit(t)

	if r := readResolv(t, tp.c); !strings.Contains(r, "nameserver 10.64.0.1") {
		t.Fatalf("resolv.conf under wg-quick:\n%s", r)
	}
	// The resolver answers (whatever it answers: the namespaces have no
	// root servers) from inside the tunnel; a query that went anywhere
	// else would time out.
	out, err := tp.in(tp.c, "dig", "+tries=1", "+time=5", "veil-wgquick.test", "A").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "status:") || !strings.Contains(string(out), "SERVER: 10.64.0.1#53") {
		t.Fatalf("a lookup through the wg-quick tunnel: %v\n%s", err, out)
	}
	down()
	downed = true
	if r := readResolv(t, tp.c); r != sentinelDNS {
		t.Fatalf("resolv.conf after wg-quick down = %q, want the original", r)
	}
}

// wgQuickUp brings the wg-quick file conf up in the client namespace as
// interface iface, with Debian's wireguard-go and a minimal resolvconf(8)
// that writes the namespace's own resolv.conf (what `ip netns exec`
// mounts over /etc/resolv.conf). It returns the function that takes it
// down again.
func (tp *topo) wgQuickUp(t *testing.T, iface, conf string) (down func()) {
	t.Helper()
	file := filepath.Join(tp.tmp, iface+".conf")
	if err := os.WriteFile(file, []byte(conf+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(tp.tmp, iface+".bin")
	saved := filepath.Join(tp.tmp, iface+".resolv.saved")
	resolvconf := "#!/bin/sh\n" +
		"# resolvconf -a IFACE [-m N] [-x] < lines | resolvconf -d IFACE [-f]\n" +
		"case \"$1\" in\n" +
		"-a) cp /etc/resolv.conf " + saved + " && cat > /etc/resolv.conf ;;\n" +
		"-d) [ -f " + saved + " ] && cat " + saved + " > /etc/resolv.conf ;;\n" +
		"esac\n"
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "resolvconf"), []byte(resolvconf), 0o755); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"),
		"WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go", "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1")
	wgQuick := func(verb string) *exec.Cmd {
		c := tp.in(tp.c, "wg-quick", verb, file)
		c.Env = env
		return c
	}
	if out, err := wgQuick("up").CombinedOutput(); err != nil {
		t.Fatalf("wg-quick up: %v\n%s", err, out)
	}
	return func() {
		if out, err := wgQuick("down").CombinedOutput(); err != nil {
			t.Errorf("wg-quick down: %v\n%s", err, out)
		}
	}
}
