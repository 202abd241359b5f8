// Package audit is the no-logs audit (promises P1, P2, P3 and P12 in
// docs/promises.md): it drives a whole use of the service (the privacy tools, the
// speed test included) from a distinctive client address, with every component logging at debug level, then searches
// everything the service and the client left behind for that address,
// the names the client resolved and the addresses it reached.
package audit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/miekg/dns"

	"veil/integration/harness"
	"veil/internal/apitypes"
	"veil/internal/client"
	"veil/internal/config"
	"veil/internal/dnstest"
	"veil/internal/logtest"
	"veil/internal/tools/dnsleak"
)

var (
	// clientAddr is the user's address: every API call, WireGuard packet
	// and DNS leak query of the test comes from it.
	clientAddr = netip.MustParseAddr("127.9.8.7")
	// destAddr is where the user's tunnelled HTTP goes.
	destAddr = netip.MustParseAddr("127.77.66.55")
	// leakAddr is the DNS leak test's server, delegated from the test
	// hierarchy so that the gateway's resolver can reach it too.
	leakAddr = netip.MustParseAddr("127.53.0.4")
	// whoisAddr is the whois tool's first server.
	whoisAddr = netip.MustParseAddr("127.43.0.1")
)

const (
	zone     = "veil-audit.test"
	leakZone = "veil-leak.test"
)

func TestNoLogsSQLite(t *testing.T) {
	runAudit(t, "", nil)
}

func TestNoLogsPostgres(t *testing.T) {
	base := os.Getenv("VEIL_TEST_POSTGRES")
	if base == "" {
		t.Skip("VEIL_TEST_POSTGRES is not set; skipping the PostgreSQL audit (scripts/test.sh starts a throwaway server)")
	}
	pgDump := findPGDump(t)
	db := postgresDB(t, base)
	runAudit(t, db, func(t *testing.T) []haystack {
		out, err := exec.Command(pgDump, "--no-owner", "--dbname", db).Output()
		if err != nil {
			t.Fatalf("pg_dump: %v", err)
		}
		if !bytes.Contains(out, []byte("COPY public.accounts")) && !bytes.Contains(out, []byte("INSERT INTO public.accounts")) {
			t.Fatalf("pg_dump output has no accounts table data:\n%.2000s", out)
		}
		return []haystack{{"pg_dump of " + db, out}}
	})
}

func label(prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// runAudit uses the whole service from clientAddr, then searches. db is
// a PostgreSQL URL, or empty for SQLite; dump returns more places to
// search once the service has stopped.
func runAudit(t *testing.T, db string, dump func(*testing.T) []haystack) {
	ctx := context.Background()
	httpLabel, dnsLabel := label("auditweb"), label("auditdns")
	httpName, dnsName := httpLabel+"."+zone, dnsLabel+"."+zone
	encNames := newEncryptedNames()
	records := map[string]netip.Addr{httpName: destAddr, dnsName: destAddr}
	for _, n := range encNames.all() {
		records[n] = destAddr
	}
	tlsFiles := dnstest.NewTLSFiles(t, "dns.test", "*.dns.test")
	hier := harness.StartDNS(t, harness.DNSConfig{Zone: zone,
		Records:  records,
		Delegate: map[string]netip.Addr{leakZone: leakAddr}})
	echo := harness.StartEcho(t, destAddr)
	whoisServer := netip.AddrPortFrom(whoisAddr, uint16(harness.StartWhois(t, whoisAddr))).String()
	whoisLabel, proxyLabel := label("auditwhois"), label("auditproxy")

	logger, logs := logtest.New()
	env := harness.Start(t, harness.Options{DNS: hier, Source: clientAddr, Logger: logger,
		Config: func(c *config.Config) {
			c.DB = db
			c.LogLevel = "debug"
			c.AdminHTTP = "127.0.0.1:0"
			c.DNSLeakZone = leakZone
			c.DNSLeakAddr = netip.AddrPortFrom(leakAddr, uint16(hier.Port)).String()
			c.WhoisServer = whoisServer
			configureEncrypted(t, c, tlsFiles)
		}})
	base := env.Svc.URL()

	// Account, login, device.
	code := env.CreateAccount(t, 30)
	stateDir := t.TempDir()
	st := env.Login(t, stateDir, code)
	api := env.API(st.Token)
	var acc apitypes.Account
	if err := api.Do(ctx, http.MethodGet, "/api/v1/account", nil, &acc); err != nil || !acc.Active {
		t.Fatalf("GET /api/v1/account: %+v, %v", acc, err)
	}
	if err := api.Do(ctx, http.MethodGet, "/api/v1/account/export", nil, nil); err != nil {
		t.Fatalf("GET /api/v1/account/export: %v", err)
	}
	consent := true
	if err := api.Do(ctx, http.MethodPatch, "/api/v1/account", apitypes.AccountPatch{MarketingConsent: &consent}, nil); err != nil {
		t.Fatalf("PATCH /api/v1/account: %v", err)
	}
	if _, err := api.Devices(ctx); err != nil {
		t.Fatalf("GET /api/v1/devices: %v", err)
	}

	// The privacy engine: a support ticket, the client's version report,
	// an access-code recovery request (for an email nobody has).
	var ticket map[string]any
	if err := api.Do(ctx, http.MethodPost, "/api/v1/support/tickets",
		map[string]string{"subject": "audit ticket", "message": "the tunnel works"}, &ticket); err != nil {
		t.Fatalf("POST /api/v1/support/tickets: %v", err)
	}
	if err := env.API("").Do(ctx, http.MethodPost, "/api/v1/client-report",
		map[string]string{"os_version": "linux 6.1", "app_version": "1.0.0"}, nil); err != nil {
		t.Fatalf("POST /api/v1/client-report: %v", err)
	}
	if err := env.API("").Do(ctx, http.MethodPost, "/api/v1/account/recover",
		map[string]string{"email": "nobody@example.test"}, nil); err != nil {
		t.Fatalf("POST /api/v1/account/recover: %v", err)
	}

	// The tunnel, and HTTP and DNS through it.
	tun := env.Up(t, st, clientAddr)
	socks := harness.SOCKSClient(t, tun.SOCKSAddr(), 20*time.Second)
	webURL := "http://" + net.JoinHostPort(httpName, strconv.Itoa(echo.Port)) + "/"
	if got, err := harness.Get(socks, webURL); err != nil || got == clientAddr.String() {
		t.Fatalf("fetch through SOCKS5: %q, %v", got, err)
	}
	pu, _ := url.Parse("http://" + tun.HTTPProxyAddr())
	hp := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(pu), DisableKeepAlives: true}}
	if got, err := harness.Get(hp, webURL); err != nil || got == clientAddr.String() {
		t.Fatalf("fetch through the HTTP proxy: %q, %v", got, err)
	}
	if got := tunnelDNS(t, tun, dnsName); got != destAddr {
		t.Fatalf("%s through the tunnel's resolver = %v, want %v", dnsName, got, destAddr)
	}
	encryptedQueries(t, tun, tlsFiles, env.Svc.PublicDNS.TLS, env.Svc.PublicDNS.HTTPS, encNames, destAddr)
	if q := hier.AuthQueries(); !slices.Contains(q, httpName+".") || !slices.Contains(q, dnsName+".") {
		t.Fatalf("the names did not go through the gateway's resolver; the authoritative server saw %v", q)
	}

	// The privacy tools, visited from the client's address.
	for _, path := range []string{"/", "/json", "/api/v1/ip"} {
		body, err := harness.Get(env.HTTP, base+path)
		if err != nil || !strings.Contains(body, clientAddr.String()) {
			t.Fatalf("GET %s: %q, %v (want the visitor's address, which shows the search below is meaningful)", path, body, err)
		}
	}
	browserGet(t, env.HTTP, base+"/", true)
	browserGet(t, env.HTTP, base+"/dnsleak", true)
	speedTest(t, env.HTTP, base)
	outboundTools(t, env.HTTP, base, whoisLabel+".example", echo.URL+"/"+proxyLabel)
	// The privacy engine's pages.
	for _, p := range []string{"/privacy", "/privacy/versions", "/account", "/support"} {
		browserGet(t, env.HTTP, base+p, true)
	}
	var leakIDs []string
	direct, err := dnsleak.Check(ctx, env.HTTP, base, func(ctx context.Context, name string) error {
		return queryFrom(ctx, clientAddr, env.Svc.DNSLeakAddr.String(), name)
	})
	if err != nil {
		t.Fatalf("DNS leak test, queried directly: %v", err)
	}
	if !hasResolver(direct, clientAddr) {
		t.Fatalf("the leak server did not see the client's queries: %+v", direct)
	}
	leakIDs = append(leakIDs, direct.ID)
	tunnelled, err := dnsleak.Check(ctx, env.HTTP, base, func(ctx context.Context, name string) error {
		tunnelDNS(t, tun, name)
		return nil
	})
	if err != nil {
		t.Fatalf("DNS leak test through the tunnel: %v", err)
	}
	if len(tunnelled.Resolvers) == 0 || hasResolver(tunnelled, clientAddr) {
		t.Fatalf("DNS leak test through the tunnel: %+v", tunnelled)
	}
	leakIDs = append(leakIDs, tunnelled.ID)
	if err := api.Do(ctx, http.MethodDelete, "/api/v1/sessions", nil, nil); err != nil {
		t.Fatalf("logging out: %v", err)
	}

	// Everything the service and the client hold.
	needles := needlesFor(clientAddr, "client address")
	needles = append(needles, needlesFor(destAddr, "destination")...)
	for _, n := range append([]string{httpLabel, dnsLabel, whoisLabel, proxyLabel}, encNames.labels()...) {
		needles = append(needles, needle{"resolved name " + n, []byte(n)})
	}
	for _, id := range leakIDs {
		needles = append(needles, needle{"DNS leak test id", []byte(id)})
	}

	// The operator's metrics, after all that traffic.
	metrics, err := harness.Get(harness.HTTPClient(netip.Addr{}), env.Svc.AdminURL()+"/metrics")
	if err != nil || !strings.Contains(metrics, "veil_") {
		t.Fatalf("GET /metrics: %v\n%.500s", err, metrics)
	}

	tun.Close()
	live := collect(t, env.Config.DataDir) // while running: SQLite's -wal and -shm exist
	if err := env.Svc.Stop(); err != nil {
		t.Fatalf("stopping the service: %v", err)
	}
	stopped := collect(t, env.Config.DataDir)
	var hay []haystack
	hay = append(hay, live...)
	hay = append(hay, stopped...)
	hay = append(hay, collect(t, stateDir)...)
	logBytes := logs.Bytes()
	hay = append(hay, haystack{"log output", logBytes}, haystack{"/metrics", []byte(metrics)})
	if dump != nil {
		hay = append(hay, dump(t)...)
	}

	// The search must be able to find something.
	if !bytes.Contains(logBytes, []byte("level=DEBUG")) {
		t.Fatalf("no debug log lines were collected (%d bytes): the audit would prove nothing", len(logBytes))
	}
	if !haveFile(hay, filepath.Join(stateDir, "state.json")) {
		t.Fatal("the client's state file was not searched")
	}
	if db == "" {
		for _, f := range []string{"veil.db"} {
			if !haveFile(hay, filepath.Join(env.Config.DataDir, f)) {
				t.Fatalf("%s was not searched", f)
			}
		}
		if !haveSuffix(live, "veil.db-wal") {
			t.Log("no SQLite -wal file while running (journal mode without WAL)")
		}
	}
	for _, h := range hay {
		t.Logf("searching %s (%d bytes)", h.where, len(h.b))
	}
	t.Logf("searching for %d needles", len(needles))
	for _, found := range search(hay, needles) {
		t.Error(found)
	}
}

// tunnelDNS asks the gateway's resolver, through the tunnel, for name's A
// record.
func tunnelDNS(t *testing.T, tun *client.Tunnel, name string) netip.Addr {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := tun.DialContext(ctx, "udp", net.JoinHostPort(tun.Status().DNS, "53"))
	if err != nil {
		t.Fatalf("dialing the gateway's resolver: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	co := &dns.Conn{Conn: c}
	if err := co.WriteMsg(m); err != nil {
		t.Fatal(err)
	}
	in, err := co.ReadMsg()
	if err != nil {
		t.Fatalf("reading the resolver's answer: %v", err)
	}
	for _, rr := range in.Answer {
		if a, ok := rr.(*dns.A); ok {
			ip, _ := netip.AddrFromSlice(a.A.To4())
			return ip
		}
	}
	return netip.Addr{}
}

// queryFrom sends one A query for name from src to server, over UDP.
func queryFrom(ctx context.Context, src netip.Addr, server, name string) error {
	c := &dns.Client{Net: "udp", Timeout: 5 * time.Second,
		Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: src.AsSlice()}}}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	_, _, err := c.ExchangeContext(ctx, m, server)
	return err
}

func hasResolver(r *dnsleak.Result, a netip.Addr) bool {
	for _, res := range r.Resolvers {
		if res.IP == a.String() {
			return true
		}
	}
	return false
}

// speedTest runs what the speed test page runs: its page, the visitor
// line, pings, a download and an upload.
func speedTest(t *testing.T, c *http.Client, base string) {
	t.Helper()
	browserGet(t, c, base+"/speedtest", true)
	be := base + "/speedtest/backend/"
	if body, err := harness.Get(c, be+"getIP.php"); err != nil || !strings.Contains(body, clientAddr.String()) {
		t.Fatalf("GET getIP.php: %q, %v (want the visitor's address)", body, err)
	}
	for _, u := range []string{be + "empty.php?r=1", be + "garbage.php?ckSize=2"} {
		if _, err := harness.Get(c, u); err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
	}
	resp, err := c.Post(be+"empty.php", "application/octet-stream", strings.NewReader(strings.Repeat("u", 1<<20)))
	if err != nil {
		t.Fatalf("POST empty.php: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST empty.php: %s", resp.Status)
	}
}

// outboundTools pings the destination the client reached, looks a name
// up in whois and opens a page through the web proxy, from the client's
// address.
func outboundTools(t *testing.T, c *http.Client, base, name, page string) {
	t.Helper()
	// The echo server answers with the address it saw: the server's.
	if body, err := harness.Get(c, base+"/proxy?url="+url.QueryEscape(page)); err != nil || body == "" || body == clientAddr.String() {
		t.Fatalf("web proxy %s: %v; the site saw %q", page, err, body)
	}
	resp, err := c.Get(base + "/api/v1/ping?count=1&host=" + destAddr.String())
	if err != nil {
		t.Fatalf("ping: %v", err)
	}
	resp.Body.Close()
	// Without root (or a ping group) the server has no ICMP socket and
	// says so; either way the request went through the handler.
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("ping %s: %s", destAddr, resp.Status)
	}
	body, err := harness.Get(c, base+"/whois?q="+name)
	if err != nil || !strings.Contains(body, "answer for "+name) {
		t.Fatalf("whois %s: %v\n%.1000s", name, err, body)
	}
}

// browserGet fetches u as a browser does; a missing page is an error
// only when must is set.
func browserGet(t *testing.T, c *http.Client, u string, must bool) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36")
	req.Header.Set("Accept", "text/html")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound && !must {
		t.Logf("GET %s: not in this build", u)
		return
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
}

// A needle is what must not be found; a haystack where it is looked for.
type needle struct {
	what string
	b    []byte
}

type haystack struct {
	where string
	b     []byte
}

// needlesFor lists an IPv4 address's forms: dotted text, IPv4-mapped
// IPv6 text (both ways of writing it), hexadecimal, and its 4 and 16 raw
// bytes.
func needlesFor(a netip.Addr, what string) []needle {
	a4 := a.As4()
	a16 := netip.AddrFrom16(a.As16()).As16()
	return []needle{
		{what + " (text)", []byte(a.String())},
		{what + " (IPv4-mapped text)", []byte("::ffff:" + a.String())},
		{what + " (IPv4-mapped hex text)", []byte(fmt.Sprintf("::ffff:%x:%x", uint16(a4[0])<<8|uint16(a4[1]), uint16(a4[2])<<8|uint16(a4[3])))},
		{what + " (hex)", []byte(hex.EncodeToString(a4[:]))},
		{what + " (4 raw bytes)", a4[:]},
		{what + " (16 raw bytes)", a16[:]},
	}
}

// collect reads every regular file under dir.
func collect(t *testing.T, dir string) []haystack {
	t.Helper()
	var out []haystack
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out = append(out, haystack{path, b})
		return nil
	})
	if err != nil {
		t.Fatalf("reading %s: %v", dir, err)
	}
	return out
}

func haveFile(hay []haystack, path string) bool {
	for _, h := range hay {
		if h.where == path && len(h.b) > 0 {
			return true
		}
	}
	return false
}

func haveSuffix(hay []haystack, suffix string) bool {
	for _, h := range hay {
		if strings.HasSuffix(h.where, suffix) {
			return true
		}
	}
	return false
}

// search returns one line per needle found, with some context.
func search(hay []haystack, needles []needle) []string {
	var found []string
	for _, h := range hay {
		for _, n := range needles {
			i := bytes.Index(h.b, n.b)
			if i < 0 {
				continue
			}
			lo, hi := max(0, i-120), min(len(h.b), i+len(n.b)+120)
			found = append(found, fmt.Sprintf("%s found in %s at byte %d: %q", n.what, h.where, i, h.b[lo:hi]))
		}
	}
	sort.Strings(found)
	return found
}

func findPGDump(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("pg_dump"); err == nil {
		return p
	}
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_dump")
	if len(m) == 0 {
		t.Fatal("VEIL_TEST_POSTGRES is set but pg_dump is not installed (Debian package postgresql)")
	}
	sort.Strings(m)
	return m[len(m)-1]
}

// postgresDB creates a database of its own on the server at base and
// drops it at cleanup.
func postgresDB(t *testing.T, base string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("VEIL_TEST_POSTGRES: %v", err)
	}
	name := strings.ReplaceAll(label("veil_audit"), "-", "_")
	admin := func(stmt string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Fatalf("connecting to VEIL_TEST_POSTGRES: %v", err)
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	admin("CREATE DATABASE " + name)
	t.Cleanup(func() { admin("DROP DATABASE " + name + " WITH (FORCE)") })
	u.Path = "/" + name
	return u.String()
}
