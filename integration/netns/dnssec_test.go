//go:build linux

package netns

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"veil/internal/dnstest"
)

// TestDNSSECThroughTunnel: a client behind `veil connect --mode tun`
// asks the gateway's resolver with `dig +dnssec`. The internet host
// serves a signed root, which the gateway trusts through
// --dns-trust-anchor: a signed name comes back with AD and its RRSIG, a
// name whose signature was tampered with is SERVFAIL with the "DNSSEC
// Bogus" extended error, and with +cd the client gets it as it is.
func TestDNSSECThroughTunnel(t *testing.T) {
	requireNetns(t, "dig")
	tp := newTopo(t)
	var b [5]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	good, forged := "signed-"+id+".veil-netns.test.", "forged-"+id+".veil-netns.test."
	key, err := dnstest.NewKey(".", true)
	if err != nil {
		t.Fatal(err)
	}
	var zone []dns.RR
	for _, line := range []string{
		". 86400 IN NS a.root-servers.test.",
		"a.root-servers.test. 86400 IN A " + inet4,
		good + " 60 IN A " + inet4,
		forged + " 60 IN A " + inet4,
	} {
		rr, err := dns.NewRR(line)
		if err != nil {
			t.Fatal(err)
		}
		zone = append(zone, rr)
	}
	// The gateway's clock is the real one.
	now := time.Now()
	signed, err := dnstest.Sign(".", zone, dnstest.Signing{Keys: []*dnstest.Key{key}, Inception: now.Add(-time.Hour), Expiration: now.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var root []string
	for _, rr := range signed {
		if s, ok := rr.(*dns.RRSIG); ok && s.TypeCovered == dns.TypeA && strings.EqualFold(s.Hdr.Name, forged) {
			sig, _ := base64.StdEncoding.DecodeString(s.Signature)
			sig[10] ^= 1
			s.Signature = base64.StdEncoding.EncodeToString(sig)
		}
		root = append(root, rr.String())
	}
	anchor := filepath.Join(tp.tmp, "anchor.ds")
	if err := os.WriteFile(anchor, []byte(key.DS().String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tp.connectToRoot(t, root, "--dns-trust-anchor", anchor)

	digArgs := []string{"dig", "+dnssec", "+tries=2", "+time=5", "+noall", "+comments", "+answer"}
	out := tp.runIn(t, tp.c, append(digArgs, good, "A")...)
	if !strings.Contains(out, "status: NOERROR") || !hasFlag(out, "ad") || !rrsigA.MatchString(out) {
		t.Errorf("dig +dnssec %s: want NOERROR, the ad flag and an RRSIG:\n%s", good, out)
	}
	out = tp.runIn(t, tp.c, append(digArgs, forged, "A")...)
	if !strings.Contains(out, "status: SERVFAIL") || !strings.Contains(out, "EDE: 6") {
		t.Errorf("dig +dnssec %s: want SERVFAIL with EDE 6 (DNSSEC Bogus):\n%s", forged, out)
	}
	out = tp.runIn(t, tp.c, append(digArgs, "+cd", forged, "A")...)
	if !strings.Contains(out, "status: NOERROR") || hasFlag(out, "ad") || !strings.Contains(out, inet4) {
		t.Errorf("dig +dnssec +cd %s: want the data, without ad:\n%s", forged, out)
	}
}

var rrsigA = regexp.MustCompile(`\sRRSIG\s+A\s`)

// hasFlag reports whether dig's ";; flags:" line lists flag.
func hasFlag(out, flag string) bool {
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, ";; flags:"); ok {
			flags, _, _ := strings.Cut(rest, ";")
			for _, f := range strings.Fields(flags) {
				if f == flag {
					return true
				}
			}
		}
	}
	return false
}
