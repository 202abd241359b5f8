//go:build linux

package netns

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// bulkSize is what the bulk role serves: several megabytes, enough that
// full-sized segments must cross the narrow link.
const bulkSize = 8 << 20

func init() {
	roles["bulk"] = roleBulk
}

// roleBulk serves bulkSize bytes over HTTP on port 8090.
func roleBulk() {
	ln, err := net.Listen("tcp", ":8090")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	body := bytes.Repeat([]byte("m"), bulkSize)
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(body)
	}))
}

// TestMSSClampTUNGateway: the gateway host's link to the internet has an
// MTU of 1280 on its side while the internet host's side stays at 1500,
// so a segment sized for the tunnel (MTU 1420) sent by the internet host
// is dropped on arrival without any ICMP (an MTU black hole; ICMP is
// dropped on the internet host besides). A download of several
// megabytes through the tun-mode gateway completes only if the gateway
// clamps the MSS of the SYN to the route's MTU, which a capture on the
// internet host shows.
func TestMSSClampTUNGateway(t *testing.T) {
	testMSS(t, tunGateway)
}

// TestMSSNetstackGateway: the same for the built-in gateway, whose gVisor
// stack ends the peers' TCP and opens its own from the host: the host's
// kernel advertises an MSS that fits the route (1280 less 40), with no
// clamp to install.
func TestMSSNetstackGateway(t *testing.T) {
	testMSS(t, builtinGateway)
}

func testMSS(t *testing.T, kind gatewayKind) {
	requireNetns(t, "curl")
	tp := newTopo(t)
	run(t, "ip", "-n", tp.g, "link", "set", "g1", "mtu", "1280")
	// Segmentation offload would let the internet host hand its veth one
	// large buffer that crosses to g1 unchecked against the MTU and is cut
	// into segments only past it, hiding the black hole: one segment per
	// buffer makes every full-sized packet meet g1's MTU on its own.
	run(t, "ip", "-n", tp.i, "link", "set", "i0", "gso_max_segs", "1")
	tp.runIn(t, tp.i, "nft", "add table inet blackhole")
	tp.runIn(t, tp.i, "nft", "add chain inet blackhole in { type filter hook input priority 0; meta l4proto icmp drop; }")
	tp.start(t, tp.i, []string{"VEIL_NETNS_ROLE=bulk"}, tp.self)

	gw := tp.startGateway(t, kind)
	state := tp.login(t, gw)
	tp.veil(t, tp.c, "connect", "--mode", "tun", "--location", gw.location, "--state", state, "--timeout", "15s")

	if kind == tunGateway {
		if rules := tp.runIn(t, tp.g, "nft", "list", "ruleset"); !strings.Contains(rules, "maxseg size set rt mtu") {
			t.Errorf("no MSS clamp in the gateway's ruleset:\n%s", rules)
		}
	}
	stop := tp.captureOn(t, tp.i, "i0", "in", "tcp port 8090 and tcp[tcpflags] & tcp-syn != 0")
	out, err := tp.download(20 * time.Second)
	syns := stop()
	if err != nil || out != fmt.Sprint(bulkSize) {
		t.Fatalf("download through the tunnel over a 1280-MTU hop: %v, %s of %d bytes (SYNs seen: %q)", err, out, bulkSize, syns)
	}
	if len(syns) == 0 {
		t.Fatal("the capture saw no SYN")
	}
	for _, s := range syns {
		if !strings.Contains(s, "mss 1240") {
			t.Errorf("SYN reached the internet host without mss 1240: %s", s)
		}
	}
}
