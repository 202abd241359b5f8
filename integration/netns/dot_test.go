//go:build linux

package netns

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"veil/internal/dnstest"
)

// TestEncryptedDNSThroughTunnel: a gateway given dns_tls_cert and
// dns_tls_key answers DNS over TLS on its tunnel address's port 853 and
// DNS over HTTPS at https://10.64.0.1/dns-query, in both data planes;
// a client behind `veil connect --mode tun` asks with kdig +tls and
// +https, checking the certificate against the test CA, while its veth
// carries nothing to those ports outside the tunnel.
func TestEncryptedDNSThroughTunnel(t *testing.T) {
	requireNetns(t, "kdig")
	for _, kind := range []gatewayKind{builtinGateway, tunGateway} {
		t.Run(string(kind), func(t *testing.T) { testEncryptedDNS(t, kind) })
	}
}

func testEncryptedDNS(t *testing.T, kind gatewayKind) {
	tp := newTopo(t)
	var b [5]byte
	rand.Read(b[:])
	name := "dot-" + hex.EncodeToString(b[:]) + ".veil-netns.test"
	root := []string{
		". 86400 IN NS a.root-servers.test.",
		"a.root-servers.test. 86400 IN A " + inet4,
		". 86400 IN SOA a.root-servers.test. host.test. 1 3600 600 86400 60",
		name + ". 60 IN A " + inet4,
	}
	tp.start(t, tp.i, []string{"VEIL_NETNS_ROLE=dns"}, append([]string{tp.self, "--"}, root...)...)
	hints := filepath.Join(tp.tmp, "root.hints")
	if err := os.WriteFile(hints, []byte(". 3600000 NS A.ROOT-SERVERS.TEST.\nA.ROOT-SERVERS.TEST. 3600000 A "+inet4+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	files := dnstest.NewTLSFiles(t, "dns.veil.test", "10.64.0.1", "fd7a:7665:696c::1")
	// The test root is not signed.
	dnsFlags := []string{"--dns-root-hints", hints, "--dns-validate=false", "--dns-tls-cert", files.CertFile, "--dns-tls-key", files.KeyFile}
	switch kind {
	case builtinGateway:
		tp.serveArgs = dnsFlags
	case tunGateway:
		tp.gatewayEnv = []string{"VEIL_DNS_ROOT_HINTS=" + hints, "VEIL_DNS_VALIDATE=false",
			"VEIL_DNS_TLS_CERT=" + files.CertFile, "VEIL_DNS_TLS_KEY=" + files.KeyFile,
			// WireGuard over TLS keeps its port 443 on every address: DNS
			// over HTTPS on the tunnel addresses shares it.
			"VEIL_TLS_PORT=443"}
	}
	gw := tp.startGateway(t, kind)
	state := tp.login(t, gw)
	tp.veil(t, tp.c, "connect", "--mode", "tun", "--location", gw.location, "--state", state, "--timeout", "15s")
	defer tp.disconnect(t, state)

	stop := tp.captureFilter(t, "tcp and (port 853 or port 443)")
	kdig := []string{"kdig", "@10.64.0.1", "+tls-ca=" + files.CAFile, "+tls-hostname=dns.veil.test", "+timeout=10", "+retry=1"}
	dot := tp.runIn(t, tp.c, append(kdig, "+tls", name, "A")...)
	doh := tp.runIn(t, tp.c, append(kdig, "+https", name, "A")...)
	seen := stop()
	for proto, out := range map[string]string{"+tls": dot, "+https": doh} {
		if !strings.Contains(out, "status: NOERROR") || !strings.Contains(out, inet4) {
			t.Errorf("kdig %s %s through the tunnel: want %s:\n%s", proto, name, inet4, out)
		}
	}
	if !strings.Contains(dot, "TLS session") || !strings.Contains(dot, "@853(TCP)") {
		t.Errorf("kdig +tls did not report a TLS session:\n%s", dot)
	}
	if !strings.Contains(doh, "HTTP session (HTTP/2") || strings.Contains(dot, "HTTP session") {
		t.Errorf("kdig +https did not report an HTTP/2 session (or +tls did):\n%s", doh)
	}
	if len(seen) > 0 {
		t.Errorf("%d packets to ports 853/443 left the client outside the tunnel:\n%s", len(seen), strings.Join(seen, "\n"))
	}
	// A client that does not trust the certificate gets nothing.
	if out, err := tp.in(tp.c, "kdig", "@10.64.0.1", "+tls-ca", "+tls-hostname=dns.veil.test", "+timeout=5", "+retry=0", "+tls", name, "A").CombinedOutput(); err == nil && strings.Contains(string(out), "NOERROR") {
		t.Errorf("kdig with the system CAs trusted the test certificate:\n%s", out)
	}
}
