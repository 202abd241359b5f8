//go:build linux

package netns

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
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
	"veil/internal/client"
)

// Addresses, from the documentation ranges: client—gateway on
// 192.0.2.0/24 and 2001:db8:1::/64, gateway—internet on 198.51.100.0/24
// and 2001:db8:2::/64.
const (
	client4, gwIn4, gwOut4, inet4 = "192.0.2.1", "192.0.2.2", "198.51.100.1", "198.51.100.2"
	client6, gwIn6, gwOut6, inet6 = "2001:db8:1::1", "2001:db8:1::2", "2001:db8:2::1", "2001:db8:2::2"
	control                       = "http://192.0.2.2:8080"
	// sentinelDNS is the client namespace's resolv.conf before connecting.
	sentinelDNS = "nameserver 192.0.2.53\n"
)

type topo struct {
	c, g, i string // namespace names
	bin     string // built veil binary
	self    string // this test binary
	tmp     string
	// serveArgs are more flags for `veil serve`.
	serveArgs []string
	// gatewayEnv are more VEIL_* variables for `veil gateway`.
	gatewayEnv []string
}

// requireNetns skips the test unless it may make namespaces and has the
// tools every namespace test uses and those given.
func requireNetns(t *testing.T, tools ...string) {
	t.Helper()
	if os.Getenv("VEIL_TEST_NETNS") != "1" {
		t.Skip("network-namespace test: set VEIL_TEST_NETNS=1 and run as root (scripts/test.sh does)")
	}
	if os.Geteuid() != 0 {
		t.Skip("network-namespace test: needs root")
	}
	for _, tool := range append([]string{"ip", "nft", "tcpdump"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("network-namespace test: %s is not installed (scripts/test-deps.sh)", tool)
		}
	}
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (tp *topo) in(ns string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
}

func (tp *topo) runIn(t testing.TB, ns string, args ...string) string {
	t.Helper()
	out, err := tp.in(ns, args...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("in %s: %s: %v\n%s%s", ns, strings.Join(args, " "), err, out, stderr)
	}
	return string(out)
}

// start runs a long-lived process in ns, killed at cleanup.
func (tp *topo) start(t testing.TB, ns string, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := tp.in(ns, args...)
	cmd.Env = append(os.Environ(), env...)
	logf, err := os.CreateTemp(tp.tmp, "proc-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("output of %s:\n%s", strings.Join(args, " "), b)
		}
	})
	return cmd
}

// newTopo makes the three namespaces and their links. Everything is
// removed at cleanup, whatever happened.
func newTopo(t *testing.T) *topo {
	t.Helper()
	var b [3]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	tp := &topo{c: "vc" + id, g: "vg" + id, i: "vi" + id, tmp: t.TempDir()}
	var err error
	if tp.self, err = os.Executable(); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{tp.c, tp.g, tp.i} {
		tp.addNS(t, ns)
	}
	run(t, "ip", "-n", tp.c, "link", "add", "c0", "type", "veth", "peer", "name", "g0", "netns", tp.g)
	run(t, "ip", "-n", tp.g, "link", "add", "g1", "type", "veth", "peer", "name", "i0", "netns", tp.i)
	addr := func(ns, dev, a4, a6 string) {
		run(t, "ip", "-n", ns, "addr", "add", a4+"/24", "dev", dev)
		run(t, "ip", "-n", ns, "addr", "add", a6+"/64", "dev", dev, "nodad")
		run(t, "ip", "-n", ns, "link", "set", dev, "up")
	}
	addr(tp.c, "c0", client4, client6)
	addr(tp.g, "g0", gwIn4, gwIn6)
	addr(tp.g, "g1", gwOut4, gwOut6)
	addr(tp.i, "i0", inet4, inet6)
	// The client's default route leads to the gateway host, so that any
	// leak would be on c0 for the capture to see; the internet host
	// answers through the gateway host.
	run(t, "ip", "-n", tp.c, "route", "add", "default", "via", gwIn4)
	run(t, "ip", "-n", tp.c, "-6", "route", "add", "default", "via", gwIn6)
	run(t, "ip", "-n", tp.i, "route", "add", "default", "via", gwOut4)
	run(t, "ip", "-n", tp.i, "-6", "route", "add", "default", "via", gwOut6)

	tp.build(t)
	return tp
}

// addNS makes the namespace ns, with its own resolv.conf and lo up,
// removed at cleanup.
func (tp *topo) addNS(t *testing.T, ns string) {
	t.Helper()
	// The namespace's own resolv.conf, which `ip netns exec`
	// mounts over /etc/resolv.conf: nothing here can touch the
	// host's resolver configuration.
	etc := filepath.Join("/etc/netns", ns)
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(etc) })
	if err := os.WriteFile(filepath.Join(etc, "resolv.conf"), []byte(sentinelDNS), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run(t, "ip", "-n", ns, "link", "set", "lo", "up")
}

// build builds the veil binary and starts the internet host's echo
// server.
func (tp *topo) build(t *testing.T) {
	t.Helper()
	tp.bin = filepath.Join(tp.tmp, "veil")
	build := exec.Command("go", "build", "-o", tp.bin, "veil/cmd/veil")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building veil: %v\n%s", err, out)
	}
	tp.start(t, tp.i, []string{"VEIL_NETNS_ROLE=echo"}, tp.self)
}

// httpIn runs one HTTP request from ns with the test binary.
func (tp *topo) httpIn(ns, method, url, token, body string) (string, error) {
	cmd := tp.in(ns, tp.self, "--", method, url, token, body)
	cmd.Env = append(os.Environ(), "VEIL_NETNS_ROLE=http")
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), fmt.Errorf("%v: %s", err, ee.Stderr)
		}
		return string(out), err
	}
	return string(out), nil
}

// waitHTTP polls url from ns until it answers (bounded).
func (tp *topo) waitHTTP(t testing.TB, ns, url string) string {
	t.Helper()
	var err error
	var out string
	for range 100 {
		if out, err = tp.httpIn(ns, "GET", url, "-", ""); err == nil {
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("GET %s from %s: %v", url, ns, err)
	return ""
}

func (tp *topo) veil(t testing.TB, ns string, args ...string) string {
	t.Helper()
	return strings.TrimSpace(tp.runIn(t, ns, append([]string{tp.bin}, args...)...))
}

// gatewayKind is which of Veil's gateways a test connects through.
type gatewayKind string

const (
	// builtinGateway is `veil serve`'s own gateway: gVisor netstack,
	// flows leave through host sockets.
	builtinGateway gatewayKind = "builtin"
	// tunGateway is `veil gateway --mode tun` beside a `veil serve`
	// without a gateway of its own: kernel TUN, forwarding, masquerade.
	tunGateway gatewayKind = "tun"
)

// gateway is the gateway host's Veil processes.
type gateway struct {
	serve    *exec.Cmd
	node     *exec.Cmd // `veil gateway`, for tunGateway
	data     string
	location string // the server name clients pick
	port     string // its WireGuard port
}

func (tp *topo) startServe(t testing.TB, data string) *exec.Cmd {
	t.Helper()
	args := append([]string{tp.bin, "serve", "--data", data, "--http", gwIn4 + ":8080",
		"--admin-http", "", "--endpoint", gwIn4 + ":51820", "--location", "zz-tst", "--gateway-name", "builtin",
		"--egress-allow", "198.51.100.0/24,2001:db8:2::/64", "--log-level", "warn"}, tp.serveArgs...)
	cmd := tp.start(t, tp.g, nil, args...)
	tp.waitHTTP(t, tp.g, control+"/healthz")
	return cmd
}

// startGateway starts the control plane and a gateway of that kind on
// the gateway host and waits until the control plane lists it online.
func (tp *topo) startGateway(t testing.TB, kind gatewayKind) *gateway {
	t.Helper()
	gw := &gateway{data: filepath.Join(tp.tmp, "serve")}
	switch kind {
	case builtinGateway:
		gw.serve = tp.startServe(t, gw.data)
		gw.location, gw.port = "builtin", "51820"
	case tunGateway:
		tp.serveArgs = append(tp.serveArgs, "--builtin-gateway=false")
		gw.serve = tp.startServe(t, gw.data)
		gw.location, gw.port = "vgw", "51822"
		token := tp.veil(t, tp.g, "admin", "gateway", "add", gw.location, "--location", "zz-vgw",
			"--endpoint", gwIn4+":"+gw.port, "--control", control, "--data", gw.data)
		gw.node = tp.start(t, tp.g, append([]string{"VEIL_TOKEN=" + token}, tp.gatewayEnv...), tp.bin, "gateway", "--control", control,
			"--mode", "tun", "--wg-port", gw.port, "--egress-allow", "198.51.100.0/24,2001:db8:2::/64")
	default:
		t.Fatalf("unknown gateway kind %q", kind)
	}
	for range 100 {
		if tp.onlineServer(t, gw.location) != nil {
			return gw
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the %s gateway did not come online", kind)
	return nil
}

// kill stops the gateway's data plane at once.
func (gw *gateway) kill(t testing.TB) {
	t.Helper()
	for _, p := range []*exec.Cmd{gw.serve, gw.node} {
		if p != nil {
			p.Process.Signal(syscall.SIGKILL)
			p.Wait()
		}
	}
}

func (tp *topo) onlineServer(t testing.TB, name string) *apitypes.Server {
	out, err := tp.httpIn(tp.g, "GET", control+"/api/v1/servers", "-", "")
	if err != nil {
		return nil
	}
	var servers []apitypes.Server
	json.Unmarshal([]byte(out), &servers)
	for _, s := range servers {
		if s.Name == name && s.Online && s.PublicKey != "" {
			return &s
		}
	}
	return nil
}

// login creates an account on gw's control plane, logs the client
// namespace in and returns its state directory; whatever a test leaves
// connected is disconnected at cleanup.
func (tp *topo) login(t testing.TB, gw *gateway) string {
	t.Helper()
	state := filepath.Join(tp.tmp, "client")
	code := tp.veil(t, tp.g, "admin", "account", "create", "--days", "30", "--control", control, "--data", gw.data)
	tp.veil(t, tp.c, "login", code, "--control", control, "--state", state)
	t.Cleanup(func() { tp.in(tp.c, tp.bin, "disconnect", "--state", state).Run() })
	return state
}

// capture runs tcpdump on the client's veth and returns a function that
// stops it and returns the packets other than the WireGuard flow to the
// gateway endpoint, ARP and neighbour discovery, that the client sends.
func (tp *topo) capture(t testing.TB, wgPort string) func() []string {
	t.Helper()
	return tp.captureFilter(t, fmt.Sprintf("not arp and not (udp and host %s and port %s) and not (icmp6 and ip6[40] >= 133 and ip6[40] <= 136)", gwIn4, wgPort))
}

// captureFilter runs tcpdump with filter on the client's veth, outbound,
// and returns a function that stops it and returns the packets seen.
func (tp *topo) captureFilter(t testing.TB, filter string) func() []string {
	t.Helper()
	// Outbound only: what the client lets out is the question.
	return tp.captureOn(t, tp.c, "c0", "out", filter)
}

// captureOn runs tcpdump with filter on dev of namespace ns, in direction
// dir ("in", "out" or "inout"), like captureFilter.
func (tp *topo) captureOn(t testing.TB, ns, dev, dir, filter string) func() []string {
	t.Helper()
	cmd := tp.in(ns, "tcpdump", "-i", dev, "-Q", dir, "-n", "-l", "-p", filter)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errp, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(errp)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "listening on") {
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	lines := make(chan []string, 1)
	go func() {
		var got []string
		s := bufio.NewScanner(out)
		for s.Scan() {
			if strings.TrimSpace(s.Text()) != "" {
				got = append(got, s.Text())
			}
		}
		lines <- got
	}()
	return func() []string {
		// Let tcpdump see the last packets of the probe, then stop it.
		time.Sleep(300 * time.Millisecond)
		cmd.Process.Signal(syscall.SIGINT)
		got := <-lines
		cmd.Wait()
		return got
	}
}

// probe attempts TCP, UDP, ICMP and DNS traffic from the client to the
// internet host, the gateway host (other than its endpoint) and beyond.
func (tp *topo) probe(t testing.TB) {
	t.Helper()
	cmd := tp.in(tp.c, tp.self, "--", inet4, inet6, gwIn4, gwIn6, "203.0.113.9", "2001:db8:3::9")
	cmd.Env = append(os.Environ(), "VEIL_NETNS_ROLE=probe")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("probe: %v\n%s", err, out)
	}
}

func (tp *topo) killSwitchPresent(t testing.TB) bool {
	return tp.in(tp.c, "nft", "list", "table", "inet", "veil").Run() == nil
}

// sigkill kills the process pid and waits until it is gone.
func sigkill(t testing.TB, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("killing pid %d: %v", pid, err)
	}
	// A loaded machine can take seconds to tear down and reap a process
	// with many threads.
	for i := 0; syscall.Kill(pid, 0) == nil; i++ {
		if i == 1000 {
			t.Fatalf("pid %d outlived SIGKILL", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// disconnect runs `veil disconnect` in the client namespace and checks
// that it lifted the kill switch and restored the resolver file.
func (tp *topo) disconnect(t testing.TB, state string) {
	t.Helper()
	if out := tp.veil(t, tp.c, "disconnect", "--state", state); out != "Disconnected" {
		t.Fatalf("disconnect said %q", out)
	}
	if tp.killSwitchPresent(t) {
		t.Fatal("kill switch still there after disconnect")
	}
	if r := readResolv(t, tp.c); r != sentinelDNS {
		t.Fatalf("resolv.conf after disconnect = %q, want the original", r)
	}
}

func readResolv(t testing.TB, ns string) string {
	b, err := os.ReadFile(filepath.Join("/etc/netns", ns, "resolv.conf"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkExit fetches from the internet host over IPv4 and IPv6 and checks
// that it saw the gateway's address each time, never the client's.
func (tp *topo) checkExit(t testing.TB) {
	t.Helper()
	for _, tc := range []struct{ url, want string }{
		{"http://" + inet4 + "/", gwOut4},
		{"http://[" + inet6 + "]/", gwOut6},
	} {
		got, err := tp.httpIn(tp.c, "GET", tc.url, "-", "")
		if err != nil {
			t.Fatalf("GET %s through the tunnel: %v", tc.url, err)
		}
		if got != tc.want {
			t.Errorf("GET %s: internet host saw %q, want the gateway's %s", tc.url, got, tc.want)
		}
	}
}

// TestTunnel runs three cases through each of Veil's gateways: traffic
// exits from the gateway's address; with the gateway gone, and then with
// the client SIGKILLed, nothing but the WireGuard flow leaves the client
// until `veil disconnect`.
func TestTunnel(t *testing.T) {
	requireNetns(t)
	for _, kind := range []gatewayKind{builtinGateway, tunGateway} {
		t.Run(string(kind), func(t *testing.T) { testTunnel(t, kind) })
	}
}

func testTunnel(t *testing.T, kind gatewayKind) {
	tp := newTopo(t)
	gw := tp.startGateway(t, kind)
	state := tp.login(t, gw)

	out := tp.veil(t, tp.c, "connect", "--mode", "tun", "--location", gw.location, "--state", state, "--timeout", "15s")
	t.Logf("connect: %s", out)
	status := func() client.Status { t.Helper(); return tp.status(t, state) }
	st := status()
	if st.Gateway != gw.location || st.Endpoint != gwIn4+":"+gw.port || st.IPv4 == "" || st.IPv6 == "" ||
		st.HandshakeAge < 0 || !st.KillSwitch || st.PID == 0 || st.State != client.StateConnected {
		t.Fatalf("status after connect = %+v", st)
	}
	if r := readResolv(t, tp.c); !strings.Contains(r, "nameserver 10.64.0.1") {
		t.Fatalf("resolv.conf while connected:\n%s", r)
	}

	t.Run("a exits from the gateway's address", func(t *testing.T) {
		tp.checkExit(t)
		if after := status(); after.RxBytes <= st.RxBytes || after.TxBytes <= st.TxBytes {
			t.Errorf("status bytes did not grow with traffic: before %d/%d, after %d/%d",
				st.RxBytes, st.TxBytes, after.RxBytes, after.TxBytes)
		}
		// The kill switch matches flows by address and port: it must not
		// turn on connection tracking, which costs every tunnelled packet
		// (the gateway's masquerade has the module loaded).
		if n, err := tp.in(tp.c, "cat", "/proc/sys/net/netfilter/nf_conntrack_count").Output(); err != nil {
			t.Logf("no conntrack in this kernel (%v): tracking not checked", err)
		} else if strings.TrimSpace(string(n)) != "0" {
			t.Errorf("the client namespace tracks %s connections while connected, want 0", strings.TrimSpace(string(n)))
		}
	})

	t.Run("b gateway killed: kill switch", func(t *testing.T) {
		gw.kill(t)
		stop := tp.capture(t, gw.port)
		tp.probe(t)
		if leaked := stop(); len(leaked) > 0 {
			t.Fatalf("%d packets left the client outside the tunnel:\n%s", len(leaked), strings.Join(leaked, "\n"))
		}
	})

	t.Run("c client SIGKILLed: kill switch until disconnect", func(t *testing.T) {
		sigkill(t, st.PID)
		if !tp.killSwitchPresent(t) {
			t.Fatal("kill switch table gone after SIGKILL")
		}
		stop := tp.capture(t, gw.port)
		tp.probe(t)
		if leaked := stop(); len(leaked) > 0 {
			t.Fatalf("%d packets left the client after SIGKILL:\n%s", len(leaked), strings.Join(leaked, "\n"))
		}
		if out := tp.veil(t, tp.c, "status", "--state", state+"-none"); !strings.Contains(out, "Not connected") {
			t.Fatalf("status with another state dir: %q", out)
		}
		tp.disconnect(t, state)
		// The capture can fail: without the kill switch, the same probe
		// is on the wire.
		stop = tp.capture(t, gw.port)
		tp.probe(t)
		if seen := stop(); len(seen) == 0 {
			t.Fatal("after disconnect the capture saw nothing: the capture itself is broken")
		}
	})
}
