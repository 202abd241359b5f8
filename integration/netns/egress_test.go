//go:build linux

package netns

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
)

// TestResolverEgressGuard: delegations whose glue points at the cloud
// metadata address, a private address, a unique-local address, another
// device's tunnel address or the gateway host's loopback get no datagram
// from the gateway's resolver, and the client gets SERVFAIL. The
// internet host holds every one of those addresses, and the gateway host
// routes them to it, so a query sent would be on the wire.
func TestResolverEgressGuard(t *testing.T) {
	requireNetns(t, "dig")
	tp := newTopo(t)
	var b [5]byte
	rand.Read(b[:])
	suffix := hex.EncodeToString(b[:]) + ".veil-netns.test."
	targets := map[string]string{
		"meta": "169.254.169.254", "private": "10.0.0.1", "ula": "fd00::1", "peer": "10.64.0.2",
		"host": "127.0.0.1", "host6": "::1",
	}
	for name, a := range targets {
		if strings.HasPrefix(name, "host") {
			continue // the gateway host's own loopback
		}
		if strings.Contains(a, ":") {
			run(t, "ip", "-n", tp.i, "addr", "add", a+"/128", "dev", "i0", "nodad")
			run(t, "ip", "-n", tp.g, "-6", "route", "add", a+"/128", "via", inet6)
		} else {
			run(t, "ip", "-n", tp.i, "addr", "add", a+"/32", "dev", "i0")
			run(t, "ip", "-n", tp.g, "route", "add", a+"/32", "via", inet4)
		}
	}
	root := []string{
		". 86400 IN NS a.root-servers.test.",
		"a.root-servers.test. 86400 IN A " + inet4,
		". 86400 IN SOA a.root-servers.test. host.test. 1 3600 600 86400 60",
		"www.ok." + suffix + " 60 IN A " + inet4,
	}
	for name, a := range targets {
		typ := "A"
		if strings.Contains(a, ":") {
			typ = "AAAA"
		}
		root = append(root, name+"."+suffix+" 60 IN NS ns."+name+"."+suffix, "ns."+name+"."+suffix+" 60 IN "+typ+" "+a)
	}
	tp.connectToRoot(t, root, "--dns-validate=false") // the test root is not signed

	var hosts []string
	for name, a := range targets {
		if !strings.HasPrefix(name, "host") {
			hosts = append(hosts, "dst host "+a)
		}
	}
	filter := "(udp or tcp) and port 53 and (" + strings.Join(hosts, " or ") + ")"
	stopInet := tp.captureOn(t, tp.i, "i0", "in", filter)
	stopLo := tp.captureOn(t, tp.g, "lo", "inout", "(udp or tcp) and port 53")
	dig := func(name string) string {
		return tp.runIn(t, tp.c, "dig", "+tries=1", "+time=5", "+noall", "+comments", "+answer", name, "A")
	}
	for name := range targets {
		if out := dig("www." + name + "." + suffix); !strings.Contains(out, "status: SERVFAIL") {
			t.Errorf("www.%s.%s: want SERVFAIL:\n%s", name, suffix, out)
		}
	}
	if out := dig("www.ok." + suffix); !strings.Contains(out, "status: NOERROR") || !strings.Contains(out, inet4) {
		t.Errorf("www.ok.%s, from the root the egress allow list opens: want %s:\n%s", suffix, inet4, out)
	}
	if seen := append(stopInet(), stopLo()...); len(seen) > 0 {
		t.Errorf("%d DNS packets reached refused addresses:\n%s", len(seen), strings.Join(seen, "\n"))
	}
}
