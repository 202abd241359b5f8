//go:build linux

package netns

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The rogue LAN: a router namespace that hands the client an address by
// DHCP, and with it (option 121, classless static routes) the two halves
// of the IPv4 space via itself.
const rogue4 = "10.99.0.1"

// TestDHCPTunnelVision is TestTunnelVision with a real DHCP exchange:
// after a tun-mode connect, the client's DHCP client (dhcpcd) takes a
// lease from a rogue server (dnsmasq) that pushes 0.0.0.0/1 and
// 128.0.0.0/1 via the rogue router. Traffic to the internet host must
// still exit from the gateway's address, and the rogue router must see
// nothing from the client but DHCP, ARP and neighbour discovery, with
// the kill switch on or off.
func TestDHCPTunnelVision(t *testing.T) {
	requireNetns(t, "dnsmasq", "dhcpcd")
	for _, ks := range []string{"--kill-switch=true", "--kill-switch=false"} {
		t.Run(strings.TrimPrefix(ks, "--"), func(t *testing.T) {
			tp := newTopo(t)
			gw := tp.startGateway(t, tunGateway)
			state := tp.login(t, gw)
			rogue, lan := tp.rogueLAN(t)
			tp.veil(t, tp.c, "connect", "--mode", "tun", ks, "--location", gw.location, "--state", state, "--timeout", "15s")

			tp.dhcp(t, lan)
			routes := tp.runIn(t, tp.c, "ip", "route", "show", "table", "main")
			for _, r := range []string{"0.0.0.0/1 via " + rogue4, "128.0.0.0/1 via " + rogue4} {
				if !strings.Contains(routes, r) {
					t.Fatalf("the rogue lease did not install %q; main table:\n%s", r, routes)
				}
			}

			stop := tp.captureOn(t, rogue, "r0", "in",
				"not arp and not (udp and (port 67 or port 68)) and not (icmp6 and ip6[40] >= 130 and ip6[40] <= 143)")
			// A subtest, so that a failed exit check still reports what
			// reached the rogue router.
			t.Run("exit", func(t *testing.T) { tp.checkExit(t) })
			tp.probe(t)
			if leaked := stop(); len(leaked) > 0 {
				t.Fatalf("%d packets from the client reached the rogue router:\n%s", len(leaked), strings.Join(leaked, "\n"))
			}
			tp.disconnect(t, state)
		})
	}
}

// rogueLAN adds the rogue router's namespace, linked to the client's,
// with a DHCP server pushing option 121 routes via itself; it returns
// the namespace and the client's end of the link, which has no address
// yet.
func (tp *topo) rogueLAN(t *testing.T) (ns, lan string) {
	t.Helper()
	id := strings.TrimPrefix(tp.c, "vc")
	ns, lan = "vr"+id, "d"+id
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	run(t, "ip", "-n", tp.c, "link", "add", lan, "type", "veth", "peer", "name", "r0", "netns", ns)
	run(t, "ip", "-n", ns, "addr", "add", rogue4+"/24", "dev", "r0")
	run(t, "ip", "-n", ns, "link", "set", "r0", "up")
	run(t, "ip", "-n", tp.c, "link", "set", lan, "up")
	// dhcpcd keeps its lease under /var/lib/dhcpcd, named by interface:
	// the name is this test's own, and the file goes with it.
	t.Cleanup(func() { os.Remove(filepath.Join("/var/lib/dhcpcd", lan+".lease")) })
	tp.start(t, ns, nil, "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=0",
		"--interface=r0", "--bind-interfaces", "--dhcp-authoritative",
		"--dhcp-range=10.99.0.10,10.99.0.20,255.255.255.0,1h",
		"--dhcp-option=121,0.0.0.0/1,"+rogue4+",128.0.0.0/1,"+rogue4,
		"--dhcp-leasefile="+filepath.Join(tp.tmp, "dnsmasq.leases"),
		"--pid-file="+filepath.Join(tp.tmp, "dnsmasq.pid"))
	return ns, lan
}

// dhcp runs dhcpcd once on lan in the client namespace: it takes a
// lease, installs what it says and exits. It leaves the resolver file
// alone, which the tunnel owns.
func (tp *topo) dhcp(t *testing.T, lan string) {
	t.Helper()
	cmd := tp.in(tp.c, "dhcpcd", "-4", "--oneshot", "--waitip", "--nobackground", "--timeout", "20", "--noipv4ll",
		"--nohook", "resolv.conf", "--nohook", "hostname", "--nohook", "timezone", "--nohook", "ntp.conf", lan)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
	}
	if err != nil || !strings.Contains(string(out), "leased 10.99.0.") {
		t.Fatalf("dhcpcd on %s: %v\n%s", lan, err, out)
	}
	if a := tp.runIn(t, tp.c, "ip", "-4", "addr", "show", "dev", lan); !strings.Contains(a, "10.99.0.") {
		t.Fatalf("no lease address on %s:\n%s", lan, a)
	}
}
