package service

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"veil/internal/dnstest"
	"veil/internal/logtest"
)

// TestPublicDNS runs serve with public_dns on loopback, over a test
// root that answers www.zqxpublic.test (127.0.0.9, where the test serves
// a page) and ads.zqxpublic.test, the latter on the ads list, and asks
// it with kdig over TLS and HTTPS, and with curl --doh-url. It then
// checks the per-client rate limit and that no name reached the log.
func TestPublicDNS(t *testing.T) {
	kdig, errK := exec.LookPath("kdig")
	curl, errC := exec.LookPath("curl")
	if errK != nil || errC != nil {
		t.Skip("kdig (Debian knot-dnsutils) or curl not installed; scripts/test-deps.sh installs them")
	}
	root := dnstest.MustZone(strings.Join([]string{
		". 86400 IN SOA a.root.test. admin.test. 1 3600 600 86400 300",
		"www.zqxpublic.test. 300 IN A 127.0.0.9",
		"ads.zqxpublic.test. 300 IN A 127.0.0.9",
	}, "\n"), ".")
	h := dnstest.Start(t, dnstest.Host{Addr: netip.MustParseAddr("127.0.0.2"), Handler: root})
	files := dnstest.NewTLSFiles(t, "dns.test", "*.dns.test", "127.0.0.1")
	dir := t.TempDir()
	ads := filepath.Join(dir, "ads.txt")
	if err := os.WriteFile(ads, []byte("ads.zqxpublic.test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, dir)
	cfg.BuiltinGateway = false
	cfg.DNSRootHints, cfg.DNSUpstreamPort, cfg.DNSValidate = h.Hints, h.Port, false
	cfg.EgressAllow = []string{"127.0.0.0/8"} // the test root
	cfg.DNSBlocklists = []string{"ads=" + ads}
	cfg.PublicDNS = true
	cfg.PublicDNSTLSAddr, cfg.PublicDNSHTTPSAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.PublicDNSCert, cfg.PublicDNSKey = files.CertFile, files.KeyFile
	cfg.PublicDNSDomain = "dns.test"
	cfg.PublicDNSRateLimit = 5
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logger, logs := logtest.New()
	svc, err := Start(context.Background(), cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	dot := svc.PublicDNS.TLS.(*net.TCPAddr).Port
	doh := svc.PublicDNS.HTTPS.(*net.TCPAddr).Port

	run := func(name string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		return string(out), err
	}
	kd := func(port int, args ...string) string {
		t.Helper()
		all := append([]string{"@127.0.0.1", "-p", strconv.Itoa(port), "+tls-ca=" + files.CAFile, "+timeout=10", "+retry=0"}, args...)
		out, err := run(kdig, all...)
		if err != nil {
			t.Errorf("kdig %s: %v\n%s", strings.Join(all, " "), err, out)
		}
		return out
	}
	if out := kd(dot, "+tls", "+tls-hostname=ads.dns.test", "ads.zqxpublic.test", "A"); !strings.Contains(out, "status: NXDOMAIN") || !strings.Contains(out, "Blocked") {
		t.Errorf("kdig +tls via ads.dns.test: want NXDOMAIN, Blocked:\n%s", out)
	}
	if out := kd(doh, "+https", "+tls-hostname=dns.test", "ads.zqxpublic.test", "A"); !strings.Contains(out, "status: NOERROR") || !strings.Contains(out, "127.0.0.9") {
		t.Errorf("kdig +https without categories: want the address:\n%s", out)
	}

	// curl resolves the page's host over DoH and fetches the page.
	ln, err := net.Listen("tcp", "127.0.0.9:0")
	if err != nil {
		t.Fatal(err)
	}
	page := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "public DoH works") })}
	go page.Serve(ln)
	defer page.Close()
	pagePort := ln.Addr().(*net.TCPAddr).Port
	dohURL := "https://127.0.0.1:" + strconv.Itoa(doh) + "/dns-query"
	out, err := run(curl, "-sS", "--max-time", "30", "--cacert", files.CAFile,
		"--doh-url", dohURL, "http://www.zqxpublic.test:"+strconv.Itoa(pagePort)+"/")
	if err != nil || out != "public DoH works" {
		t.Errorf("curl --doh-url %s: %v\n%s", dohURL, err, out)
	}
	out, err = run(curl, "-sS", "--max-time", "30", "--cacert", files.CAFile,
		"--doh-url", dohURL+"/ads", "http://ads.zqxpublic.test:"+strconv.Itoa(pagePort)+"/")
	if err == nil {
		t.Errorf("curl through /dns-query/ads reached a blocked name:\n%s", out)
	}

	// The rate limit: five answers a second (burst of ten, the tools
	// took six), so a hundred quick queries cannot all be answered.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: files.Pool}, ForceAttemptHTTP2: true}}
	defer client.CloseIdleConnections()
	q := new(dns.Msg)
	q.SetQuestion("www.zqxpublic.test.", dns.TypeA)
	b, _ := q.Pack()
	url := "https://127.0.0.1:" + strconv.Itoa(doh) + "/dns-query?dns=" + base64.RawURLEncoding.EncodeToString(b)
	refused := 0
	for range 100 {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			refused++
		} else if resp.StatusCode != http.StatusOK {
			t.Fatalf("DoH GET: %s", resp.Status)
		}
	}
	if refused == 0 {
		t.Error("a hundred queries at five a second: none refused")
	}

	if strings.Contains(strings.ToLower(logs.String()), "zqxpublic") {
		t.Errorf("a query name reached the log:\n%s", logs.String())
	}
}
