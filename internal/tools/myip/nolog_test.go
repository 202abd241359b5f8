package myip_test

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"veil/internal/geo"
	"veil/internal/geo/geotest"
	"veil/internal/logtest"
	"veil/internal/tools/dnsleak"
	"veil/internal/tools/myip"
	"veil/internal/web"
)

// TestNothingAboutTheVisitorIsLogged is promise P12: every endpoint of
// My IP and the DNS leak test is hit from a distinctive loopback address
// with debug logging on, and the address appears in no log line and no
// file the tools could have written.
func TestNothingAboutTheVisitorIsLogged(t *testing.T) {
	const visitor = "127.9.8.7"
	logs := &logtest.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	geotest.WriteFile(t, filepath.Join(dir, "dbip-city-ipv4.mmdb"), geotest.Flat, geotest.Record{Prefix: "127.0.0.0/8", Country: "SE", City: "Stockholm", ASN: 64500, Org: "Loopback AB"})
	db, err := geo.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	leak, err := dnsleak.New(dnsleak.Config{Zone: "leak.test", Addr: "127.0.0.1:0", Geo: db, Logger: logger.With("component", "dnsleak")})
	if err != nil {
		t.Fatal(err)
	}
	dnsAddr, err := leak.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := &myip.Handler{
		Geo: db, DNSLeak: leak, Logger: logger.With("component", "myip"),
		DNSBL:      []string{"bl.test"},
		LookupHost: func(ctx context.Context, host string) ([]string, error) { return nil, &net.DNSError{IsNotFound: true} },
		LookupAddr: func(ctx context.Context, addr string) ([]string, error) { return []string{"visitor.example."}, nil },
	}
	mux := http.NewServeMux()
	web.Register(mux)
	h.Register(mux)
	leak.Register(mux)
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ErrorLog = log.New(logs, "http: ", 0)
	srv.Start()
	defer srv.Close()

	client := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.ParseIP(visitor)},
	}).DialContext}}
	get := func(method, path string, hdr map[string]string) string {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	browser := map[string]string{"User-Agent": "Mozilla/5.0", "Accept": "text/html"}
	proxied := map[string]string{"X-Forwarded-For": visitor, "Via": "1.1 " + visitor}
	if got := get("GET", "/ip", nil); strings.TrimSpace(got) != visitor {
		t.Fatalf("the test client is not seen as %s but %q; is 127.0.0.0/8 on lo?", visitor, got)
	}
	for _, p := range []string{"/", "/ip", "/country", "/country-iso", "/city", "/asn", "/asn-org", "/json", "/api/v1/ip", "/static/myip.js", "/dnsleak"} {
		get("GET", p, nil)
		get("GET", p, browser)
		get("GET", p, proxied)
		get("GET", p+"?ip="+visitor, nil)
		get("GET", p+"?ip=not-an-ip-"+visitor, nil)
	}
	if page := get("GET", "/", browser); !strings.Contains(page, visitor) {
		t.Fatal("the page does not show the visitor's address")
	}
	get("POST", "/api/v1/dnsleak", nil)
	test, err := leak.NewTest()
	if err != nil {
		t.Fatal(err)
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(test.Names[0]), dns.TypeA)
	dc := &dns.Client{Timeout: 5 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(visitor)}}}
	if _, _, err := dc.Exchange(m, dnsAddr.String()); err != nil {
		t.Fatal(err)
	}
	get("GET", "/api/v1/dnsleak/"+test.ID, nil)
	get("GET", "/api/v1/dnsleak/nosuch"+visitor, nil)

	out := logs.String()
	if !strings.Contains(out, "my ip request") || !strings.Contains(out, "dns leak query") {
		t.Fatalf("debug logging did not run; the test would prove nothing:\n%s", out)
	}
	if strings.Contains(out, visitor) || strings.Contains(out, "visitor.example") || strings.Contains(out, test.Names[0]) {
		t.Errorf("the logs hold the visitor's address, host name or query:\n%s", out)
	}
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(path)
		if bytes.Contains(b, []byte(visitor)) {
			t.Errorf("%s holds the visitor's address", path)
		}
		return nil
	})
}
