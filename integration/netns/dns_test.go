//go:build linux

package netns

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"veil/internal/dnstest"
)

// roleDNS serves, on port 53 of every address, an authoritative root
// zone holding the records given after "--" (zone file lines).
func roleDNS() {
	var rrs []string
	for i, a := range os.Args {
		if a == "--" {
			rrs = os.Args[i+1:]
		}
	}
	zone, err := dnstest.NewZone([]string{"."}, rrs)
	if err == nil {
		// The unspecified IPv6 address takes IPv4 too.
		_, err = dnstest.Serve(netip.AddrPortFrom(netip.IPv6Unspecified(), 53), zone)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	select {}
}

// connectToRoot serves root (zone file lines) as the internet host's
// authoritative root, starts the built-in gateway with root hints naming
// it and serveArgs, and connects the client in tun mode. It returns the
// client's state dir.
func (tp *topo) connectToRoot(t *testing.T, root []string, serveArgs ...string) string {
	t.Helper()
	tp.start(t, tp.i, []string{"VEIL_NETNS_ROLE=dns"}, append([]string{tp.self, "--"}, root...)...)
	hints := filepath.Join(tp.tmp, "root.hints")
	if err := os.WriteFile(hints, []byte(". 3600000 NS A.ROOT-SERVERS.TEST.\nA.ROOT-SERVERS.TEST. 3600000 A "+inet4+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tp.serveArgs = append([]string{"--dns-root-hints", hints}, serveArgs...)
	gw := tp.startGateway(t, builtinGateway)
	state := tp.login(t, gw)
	tp.veil(t, tp.c, "connect", "--mode", "tun", "--location", gw.location, "--state", state, "--timeout", "15s")
	return state
}

// TestDNSThroughTunnel: with `veil connect --mode tun`,
// the client's applications resolve names through the tunnel with the
// gateway's own resolver, which recurses from root hints pointing at the
// internet host's authoritative server; the client's veth carries no
// packet to port 53 or 853 meanwhile.
func TestDNSThroughTunnel(t *testing.T) {
	requireNetns(t, "dig", "getent")
	tp := newTopo(t)
	var b [5]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	digName, getentName, webName := "dig-"+id+".veil-netns.test", "getent-"+id+".veil-netns.test", "web-"+id+".veil-netns.test"
	// The internet host is the root: one authoritative server for ".",
	// on real port 53, which the namespace allows.
	root := []string{
		". 86400 IN NS a.root-servers.test.",
		"a.root-servers.test. 86400 IN A " + inet4,
		". 86400 IN SOA a.root-servers.test. host.test. 1 3600 600 86400 60",
	}
	for _, n := range []string{digName, getentName, webName} {
		root = append(root, n+". 60 IN A "+inet4, n+". 60 IN AAAA "+inet6)
	}
	state := tp.connectToRoot(t, root, "--dns-validate=false") // the test root is not signed
	if r := readResolv(t, tp.c); !strings.Contains(r, "nameserver 10.64.0.1") {
		t.Fatalf("resolv.conf while connected:\n%s", r)
	}

	stop := tp.captureFilter(t, "(udp or tcp) and (port 53 or port 853)")
	dig := tp.runIn(t, tp.c, "dig", "+short", "+tries=2", "+time=5", digName, "A")
	getent := tp.runIn(t, tp.c, "getent", "ahostsv4", getentName)
	web, webErr := tp.httpIn(tp.c, "GET", "http://"+webName+"/", "-", "")
	seen := stop()

	if strings.TrimSpace(dig) != inet4 {
		t.Errorf("dig %s through the tunnel = %q, want %s", digName, dig, inet4)
	}
	if !strings.HasPrefix(getent, inet4+" ") {
		t.Errorf("getent ahostsv4 %s through the tunnel = %q, want %s", getentName, getent, inet4)
	}
	if webErr != nil || web != gwOut4 {
		t.Errorf("GET http://%s/ through the tunnel = %q, %v; want the gateway's %s", webName, web, webErr, gwOut4)
	}
	if len(seen) > 0 {
		t.Errorf("%d DNS packets left the client outside the tunnel:\n%s", len(seen), strings.Join(seen, "\n"))
	}

	// The capture can fail: a query sent around the tunnel, straight to
	// the internet host, is on the wire. Disconnect first, or the kill
	// switch would (rightly) drop it.
	if out := tp.veil(t, tp.c, "disconnect", "--state", state); out != "Disconnected" {
		t.Fatalf("disconnect said %q", out)
	}
	stop = tp.captureFilter(t, "(udp or tcp) and (port 53 or port 853)")
	direct, _ := tp.in(tp.c, "dig", "+short", "+tries=1", "+time=3", "@"+inet4, digName, "A").Output()
	if seen := stop(); len(seen) == 0 {
		t.Fatalf("a direct query (answer %q) was not captured: the capture itself is broken", direct)
	}
}
