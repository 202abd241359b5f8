package resolver

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// lookTool returns the path of a client tool, skipping the test when it
// is missing (scripts/test-deps.sh installs it).
func lookTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (Debian package %s; scripts/test-deps.sh installs it)", name, pkg)
	}
	return p
}

// runTool runs a client tool with a deadline and returns its output.
func runTool(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// publicFixture is a public front end with ns.hoster.alt (127.0.0.6,
// where the test also serves HTTP) and www.example.test listed under
// ads, and www.hoster.alt under malware.
func publicFixture(t *testing.T) encryptedFixture {
	h := newHierarchy(t)
	dir := t.TempDir()
	r := newTestResolver(t, h, Config{
		Blocklists: map[string]string{
			"ads":     writeFile(t, dir, "ads.txt", "www.example.test\nns.hoster.alt\n"),
			"malware": writeFile(t, dir, "malware.txt", "www.hoster.alt\n"),
		},
		Allow: func(netip.Addr) bool { return true },
	})
	return startEncrypted(t, r, EncryptedConfig{Public: true, Domain: "dns.test"})
}

// TestKdig queries the public front end with kdig over TLS (+tls) and
// HTTPS (+https), checking the certificate against the test CA and the
// categories chosen by host name and path.
func TestKdig(t *testing.T) {
	kdig := lookTool(t, "kdig", "knot-dnsutils")
	f := publicFixture(t)
	host, port, _ := net.SplitHostPort(f.dot)
	_, dohPort, _ := net.SplitHostPort(f.doh)
	tests := []struct {
		name   string
		args   []string
		status string
		want   string
	}{
		{"tls", []string{"-p", port, "+tls", "+tls-hostname=dns.test", "www.example.test", "A"}, "NOERROR", "192.0.2.1"},
		{"tls ads by host name", []string{"-p", port, "+tls", "+tls-hostname=ads.dns.test", "www.example.test", "A"}, "NXDOMAIN", "Blocked"},
		{"tls ads does not block malware", []string{"-p", port, "+tls", "+tls-hostname=ads.dns.test", "www.hoster.alt", "A"}, "NOERROR", "192.0.2.2"},
		{"https", []string{"-p", dohPort, "+https", "+tls-hostname=dns.test", "www.hoster.alt", "A"}, "NOERROR", "192.0.2.2"},
		{"https malware by path", []string{"-p", dohPort, "+https=/dns-query/malware", "+tls-hostname=dns.test", "www.hoster.alt", "A"}, "NXDOMAIN", "Blocked"},
		{"https ads by host name", []string{"-p", dohPort, "+https", "+tls-hostname=ads.dns.test", "www.example.test", "A"}, "NXDOMAIN", "Blocked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"@" + host, "+tls-ca=" + f.files.CAFile, "+timeout=10", "+retry=0"}, tt.args...)
			out, err := runTool(t, kdig, args...)
			if err != nil || !strings.Contains(out, "status: "+tt.status) || !strings.Contains(out, tt.want) {
				t.Errorf("kdig %s: %v, want status %s and %q:\n%s", strings.Join(args, " "), err, tt.status, tt.want, out)
			}
		})
	}
	// A certificate the client does not trust fails.
	out, err := runTool(t, kdig, "@"+host, "-p", port, "+tls-ca", "+tls-hostname=dns.test", "+timeout=5", "+retry=0", "www.example.test")
	if err == nil && strings.Contains(out, "NOERROR") {
		t.Errorf("kdig trusted the test certificate with the system CAs:\n%s", out)
	}
}

// TestCurlDoH has curl resolve a name over the public front end
// (--doh-url) and fetch a page from the address it got, then checks that
// the ads path blocks the same name.
func TestCurlDoH(t *testing.T) {
	curl := lookTool(t, "curl", "curl")
	f := publicFixture(t)
	ln, err := net.Listen("tcp", "127.0.0.6:0") // ns.hoster.alt
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "reached over DoH")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	page := "http://ns.hoster.alt:" + port + "/"
	doh := "https://127.0.0.1:" + strings.Split(f.doh, ":")[1] + "/dns-query"

	out, err := runTool(t, curl, "-sS", "--max-time", "30", "--cacert", f.files.CAFile, "--doh-url", doh, page)
	if err != nil || out != "reached over DoH" {
		t.Fatalf("curl --doh-url %s %s: %v\n%s", doh, page, err, out)
	}
	out, err = runTool(t, curl, "-sS", "--max-time", "30", "--cacert", f.files.CAFile, "--doh-url", doh+"/ads", page)
	if err == nil || !strings.Contains(out, "resolve") {
		t.Errorf("curl through /dns-query/ads reached a blocked name: %v\n%s", err, out)
	}
	// Without the test CA, curl refuses the DoH server.
	out, err = runTool(t, curl, "-sS", "--max-time", "30", "--doh-url", doh, page)
	if err == nil {
		t.Errorf("curl trusted the DoH server without its CA:\n%s", out)
	}
}
