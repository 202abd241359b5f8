// Package browser drives Veil's web pages in a headless Chromium (Debian's
// chromium package) through chromedp. The tests run only when
// VEIL_TEST_CHROMIUM holds the browser's path (scripts/test.sh sets it);
// they reach nothing but loopback: the browser's host resolver answers
// nothing, and the WebRTC check is given no STUN server.
package browser

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"veil/integration/harness"
	"veil/internal/geo"
	"veil/internal/geo/geotest"
	"veil/internal/netguard"
	"veil/internal/tools/dnsleak"
	"veil/internal/tools/myip"
	"veil/internal/tools/ping"
	"veil/internal/tools/speedtest"
	"veil/internal/tools/webproxy"
	"veil/internal/tools/whois"
	"veil/internal/web"
)

// browser starts a headless Chromium for the test, or skips it.
func browser(tb testing.TB) context.Context {
	tb.Helper()
	return browserFor(tb, 90*time.Second)
}

// browserFor is browser for a test that may run up to bound.
func browserFor(tb testing.TB, bound time.Duration) context.Context {
	tb.Helper()
	return harness.Chromium(tb, bound,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter"),
		// Names never resolve: the DNS leak test's image loads must not
		// reach a resolver off this machine.
		// The dual-stack test's two host names go to loopback, one per
		// address family.
		chromedp.Flag("host-resolver-rules", "MAP v4.veil.test 127.0.0.1, MAP v6.veil.test [::1], EXCLUDE 127.0.0.1, MAP * ~NOTFOUND"),
		chromedp.Flag("lang", "en-US"),
	)
}

// texts reads the text of each selector.
func texts(tb testing.TB, ctx context.Context, sels ...string) []string {
	tb.Helper()
	out := make([]string, len(sels))
	for i, sel := range sels {
		v, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			tb.Fatalf("reading %s: %v", sel, err)
		}
		out[i] = v
	}
	return out
}

func attr(tb testing.TB, ctx context.Context, sel, name string) string {
	tb.Helper()
	v, err := chromedp.Run(ctx, chromedp.AttributeValue(sel, name))
	if err != nil {
		tb.Fatalf("reading %s[%s]: %v", sel, name, err)
	}
	return v.Value
}

func screenshot(tb testing.TB, ctx context.Context, a chromedp.Action[[]byte]) []byte {
	tb.Helper()
	b, err := chromedp.Run(ctx, a)
	if err != nil {
		tb.Fatalf("screenshot: %v", err)
	}
	return b
}

// site serves My IP, the DNS leak test, the speed test, ping and whois
// (its server on loopback too) on loopback, with a geo
// database that places loopback in Stockholm.
func site(tb testing.TB) *httptest.Server {
	tb.Helper()
	srv, _, _ := siteWith(tb)
	return srv
}

// siteWith is site that also gives the handler and the mux.
func siteWith(tb testing.TB) (*httptest.Server, *myip.Handler, *http.ServeMux) {
	tb.Helper()
	db, err := geo.Open(geotest.Write(tb, geotest.Flat, geotest.Record{
		Prefix: "127.0.0.0/8", Country: "SE", City: "Stockholm", TimeZone: "Europe/Stockholm", Lat: 59.33, Lon: 18.07, ASN: 64500, Org: "Loopback Networks AB",
	}))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	leak, err := dnsleak.New(dnsleak.Config{Zone: "leak.localhost", Addr: "127.0.0.1:0", Geo: db})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := leak.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	mux := http.NewServeMux()
	web.Register(mux)
	h := &myip.Handler{Geo: db, DNSLeak: leak, DisableReverseDNS: true}
	h.Register(mux)
	leak.Register(mux)
	(&speedtest.Handler{Visitor: h.Describe}).Register(mux)
	loopback := netguard.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	(&ping.Handler{Pinger: &ping.Pinger{Guard: loopback, Interval: 10 * time.Millisecond}}).Register(mux)
	(&whois.Handler{Client: &whois.Client{Root: "127.0.0.1", Port: harness.StartWhois(tb, netip.MustParseAddr("127.0.0.1")),
		Dial: loopback.DialContext, RDAP: rdapBootstrap(tb)}}).Register(mux)
	(&webproxy.Handler{Guard: loopback}).Register(mux)
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	return srv, h, mux
}

func TestMyIPPage(t *testing.T) {
	ctx := browser(t)
	srv := site(t)
	// A browser in New York behind a Stockholm address: the time zone
	// check must catch it.
	if _, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "America/New_York"}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(`#score[data-done="1"]`)); err != nil {
		t.Fatal(err)
	}
	v := texts(t, ctx, "#ip", "#score", "#deductions", "#check-tz", "#details")
	ip, score, deductions, tzCheck, details := v[0], v[1], v[2], v[3], v[4]
	scoreAttr := attr(t, ctx, "#score", "data-score")
	shot := screenshot(t, ctx, chromedp.CaptureScreenshot())
	scoreShot := screenshot(t, ctx, chromedp.Screenshot("#score-card"))
	t.Logf("screenshot: %s; score %s; deductions:\n%s", keep(t, "myip.png", shot), score, deductions)

	if ip != "127.0.0.1" {
		t.Errorf("page shows address %q, want 127.0.0.1", ip)
	}
	if !strings.Contains(details, "Stockholm") || !strings.Contains(details, "AS64500") {
		t.Errorf("details do not show the lookup:\n%s", details)
	}
	if !regexp.MustCompile(`^\d{1,3}%$`).MatchString(score) {
		t.Fatalf("score %q is not a percentage", score)
	}
	// The score is 100 minus the deductions listed: none hidden.
	sum := 0
	for _, m := range regexp.MustCompile(`−(\d+)%`).FindAllStringSubmatch(deductions, -1) {
		n, _ := strconv.Atoi(m[1])
		sum += n
	}
	if want := strconv.Itoa(max(0, 100-sum)); scoreAttr != want {
		t.Errorf("score %s, but the listed deductions add to %d", scoreAttr, sum)
	}
	for _, want := range []string{"Time zone does not match", "Not connected through Veil", "What to do:"} {
		if !strings.Contains(deductions, want) {
			t.Errorf("deductions lack %q:\n%s", want, deductions)
		}
	}
	if !strings.Contains(tzCheck, "America/New_York") {
		t.Errorf("time zone check says %q", tzCheck)
	}
	checkPNG(t, shot, 800, 800)
	checkPNG(t, scoreShot, 100, 40)
}

// TestDualStack: the page asks an IPv4-only and an IPv6-only host name;
// IPv4 leaves through a gateway, IPv6 does not, and the page says so.
func TestDualStack(t *testing.T) {
	ctx := browser(t)
	srv, h, mux := siteWith(t)
	l6, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	v6 := httptest.NewUnstartedServer(mux)
	v6.Listener.Close()
	v6.Listener = l6
	v6.Start()
	defer v6.Close()
	// Set before the first request; the handler reads them per request.
	h.IPv4URL = fmt.Sprintf("http://v4.veil.test:%d", srv.Listener.Addr().(*net.TCPAddr).Port)
	h.IPv6URL = fmt.Sprintf("http://v6.veil.test:%d", l6.Addr().(*net.TCPAddr).Port)
	h.Gateway = func(ip netip.Addr) (string, bool) { return "lo-gw-1", ip.Is4() }

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(`#score[data-done="1"]`)); err != nil {
		t.Fatal(err)
	}
	v := texts(t, ctx, "#protection", "#check-dualstack", "#deductions")
	if !strings.HasPrefix(v[0], "You are not fully protected") || !strings.Contains(v[0], "lo-gw-1") || !strings.Contains(v[0], "IPv6 goes around the tunnel") {
		t.Errorf("protection: %q", v[0])
	}
	if v[1] != "IPv4: 127.0.0.1 · IPv6: ::1" {
		t.Errorf("dual-stack check: %q", v[1])
	}
	if !strings.Contains(v[2], "IPv6 goes around the tunnel") || strings.Contains(v[2], "Not connected through Veil") {
		t.Errorf("deductions:\n%s", v[2])
	}
}

func TestDNSLeakPage(t *testing.T) {
	ctx := browser(t)
	srv := site(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/dnsleak"), chromedp.WaitVisible(`#verdict[data-verdict]`)); err != nil {
		t.Fatal(err)
	}
	verdict := texts(t, ctx, "#verdict")[0]
	state := attr(t, ctx, "#verdict", "data-verdict")
	// The browser's names resolve nowhere here, so no resolver asks.
	if state != dnsleak.NoQueries || !strings.Contains(verdict, "No resolver") {
		t.Errorf("verdict %q (%s)", verdict, state)
	}
}

// TestSpeedTestPage runs the speed test page against its own server:
// the visitor line names the address and its network, and ping, jitter,
// download and upload all come out as measured numbers.
func TestSpeedTestPage(t *testing.T) {
	ctx := browser(t)
	srv := site(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/speedtest?seconds=1"),
		chromedp.WaitVisible("#start"), chromedp.Click("#start"),
		chromedp.WaitVisible(`#phase[data-done]`)); err != nil {
		t.Fatal(err)
	}
	if done := attr(t, ctx, "#phase", "data-done"); done != "1" {
		t.Fatalf("the test ended with %q: %s", done, texts(t, ctx, "#phase")[0])
	}
	v := texts(t, ctx, "#ip", "#ping", "#jitter", "#download", "#upload")
	if want := "127.0.0.1 - AS64500 Loopback Networks AB, Sweden"; v[0] != want {
		t.Errorf("visitor %q, want %q", v[0], want)
	}
	for i, name := range []string{"ping", "jitter", "download", "upload"} {
		f, err := strconv.ParseFloat(v[i+1], 64)
		if err != nil || f < 0 || (f == 0 && (name == "download" || name == "upload")) {
			t.Errorf("%s shows %q, want a measured number", name, v[i+1])
		}
	}
	shot := screenshot(t, ctx, chromedp.CaptureScreenshot())
	checkPNG(t, shot, 800, 600)
	t.Logf("ping %s ms, jitter %s ms, download %s Mbit/s, upload %s Mbit/s (loopback, 1 s phases); screenshot %s",
		v[1], v[2], v[3], v[4], keep(t, "speedtest.png", shot))
}

// rdapBootstrap sends .test questions to an RDAP stand-in on loopback
// that knows example.test; other questions go to port 43.
func rdapBootstrap(tb testing.TB) *whois.Bootstrap {
	tb.Helper()
	url := harness.StartRDAP(tb, netip.MustParseAddr("127.0.0.1"), map[string]string{
		"/domain/example.test": `{"objectClassName":"domain","ldhName":"example.test","status":["active"],
			"events":[{"eventAction":"expiration","eventDate":"2030-08-13T04:00:00Z"}],
			"nameservers":[{"objectClassName":"nameserver","ldhName":"ns1.example.test"}],
			"entities":[{"objectClassName":"entity","roles":["registrar"],"vcardArray":["vcard",[["version",{},"text","4.0"],["fn",{},"text","Example Registrar"]]]}]}`,
	})
	files := fstest.MapFS{}
	for name, entry := range map[string]string{"dns": "test", "ipv4": "192.0.2.0/24", "ipv6": "2001:db8::/32", "asn": "64500"} {
		files["b/"+name+".json"] = &fstest.MapFile{Data: []byte(`{"version":"1.0","services":[[["` + entry + `"],["` + url + `"]]]}`)}
	}
	b, err := whois.ParseBootstrap(files, "b")
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestPingAndWhoisPages fills in and submits each tool's form, as a
// visitor does, and reads the answer off the page.
func TestPingAndWhoisPages(t *testing.T) {
	ctx := browser(t)
	srv := site(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/whois"),
		chromedp.SendKeys("#q", "Example.ORG"), chromedp.Submit("#q"),
		chromedp.WaitVisible(".answer pre")); err != nil {
		t.Fatal(err)
	}
	if got := texts(t, ctx, ".answer pre")[0]; !strings.Contains(got, "answer for example.org") {
		t.Errorf("whois page shows %q", got)
	}
	checkPNG(t, screenshot(t, ctx, chromedp.CaptureScreenshot()), 800, 600)

	// Where the registry offers RDAP, its key fields come first.
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/whois"),
		chromedp.SendKeys("#q", "example.test"), chromedp.Submit("#q"),
		chromedp.WaitVisible("#summary")); err != nil {
		t.Fatal(err)
	}
	if got := texts(t, ctx, "#registrar", "#summary h2"); got[0] != "Example Registrar" || !strings.Contains(got[1], "RDAP") {
		t.Errorf("whois page's RDAP summary: %q", got)
	}
	shot := screenshot(t, ctx, chromedp.CaptureScreenshot())
	checkPNG(t, shot, 800, 600)
	t.Logf("screenshot: %s", keep(t, "whois-rdap.png", shot))

	// The page's script streams the replies: each line as it comes, then
	// the summary. TCP to a loopback listener works for every user; ICMP
	// where this user may open ICMP sockets (else it falls back to TCP,
	// port 443 here, and says so).
	port := fmt.Sprint(harness.StartTCP(t, netip.MustParseAddr("127.0.0.1")))
	summary := `(() => { const s = document.getElementById("live-summary").textContent, e = document.getElementById("stream-error");
		return s || (!e.hidden && "error: " + e.textContent) })()`
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/ping"),
		chromedp.SendKeys("#host", "127.0.0.1"), chromedp.SetValue("#proto", "tcp"), chromedp.SendKeys("#port", port),
		chromedp.Click("#ping-form button")); err != nil { // a click, as form.submit() would skip the script
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Poll[string](summary))
	if err != nil {
		t.Fatal(err)
	}
	lines, _ := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.querySelectorAll("#live-lines tr").length`))
	title := texts(t, ctx, "#live-title")[0]
	if !strings.HasPrefix(got, "4 sent, 4 received") || lines != 4 || !strings.Contains(title, "TCP port "+port) {
		t.Errorf("TCP ping: summary %q, %v lines, title %q", got, lines, title)
	}
	loc, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.search`))
	if !strings.Contains(loc, "proto=tcp") {
		t.Errorf("the address bar says %q, want the question", loc)
	}
	if d, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.getElementById("stream-error")).display`)); d != "none" {
		t.Errorf("the empty error line shows (display %q)", d)
	}
	shot = screenshot(t, ctx, chromedp.CaptureScreenshot())
	checkPNG(t, shot, 800, 600)
	t.Logf("screenshot: %s", keep(t, "ping.png", shot))

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/ping"),
		chromedp.SendKeys("#host", "127.0.0.1"), chromedp.Click("#ping-form button")); err != nil {
		t.Fatal(err)
	}
	if got, err = chromedp.Run(ctx, chromedp.Poll[string](summary)); err != nil {
		t.Fatal(err)
	}
	note := texts(t, ctx, "#live-note")[0]
	if strings.Contains(note, "ICMP is not available") {
		t.Logf("ICMP ping fell back to TCP: %q, %q", note, got)
	} else if !strings.HasPrefix(got, "4 sent, 4 received") {
		t.Errorf("ICMP ping shows %q", got)
	}
}

// TestWebProxyPage opens a page through the web proxy: its image comes
// through the proxy and shows, its script does not run, and a link leads
// back through the proxy.
func TestWebProxyPage(t *testing.T) {
	ctx := browser(t)
	srv := site(t)
	pic := testPNG(40, 30)
	var direct atomic.Int32 // requests that did not come through the proxy
	originMux := http.NewServeMux()
	originMux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("User-Agent") != "Mozilla/5.0 (compatible; Veil web proxy)" {
			direct.Add(1)
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<html><head><title>origin</title></head><body><h1 id="h">Hello from the origin</h1>`+
			`<img id="pic" src="/pic.png"><a id="next" href="/second">second</a>`+
			`<script>document.title = "script ran"</script><img id="leak" src="http://127.0.0.1:1/direct.png"></body></html>`)
	})
	originMux.HandleFunc("/pic.png", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("User-Agent") != "Mozilla/5.0 (compatible; Veil web proxy)" {
			direct.Add(1)
		}
		w.Header().Set("Content-Type", "image/png")
		w.Write(pic)
	})
	origin := httptest.NewServer(originMux)
	t.Cleanup(origin.Close)

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/proxy"),
		chromedp.SendKeys("#url", origin.URL+"/"), chromedp.Submit("#url"),
		chromedp.WaitVisible("#h")); err != nil {
		t.Fatal(err)
	}
	// Wait for the image to settle (it loads through the proxy).
	width, err := chromedp.Run(ctx, chromedp.Poll[string](`(() => { const i = document.getElementById("pic"); return i.complete ? String(i.naturalWidth) : false })()`))
	if err != nil || width != "40" {
		t.Fatalf("the proxied image is %s px wide (%v), want 40", width, err)
	}
	title, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.title`))
	href := attr(t, ctx, "#next", "href")
	if title == "script ran" || !strings.Contains(href, "/proxy?url=") {
		t.Errorf("title %q (the script must not run), link %q (must go through the proxy)", title, href)
	}
	if n := direct.Load(); n != 0 {
		t.Errorf("the origin was reached %d times other than through the proxy", n)
	}
	checkPNG(t, screenshot(t, ctx, chromedp.CaptureScreenshot()), 800, 600)
}

// keep writes a screenshot where a person can look at it: into
// $VEIL_TEST_ARTIFACTS, or the test's temporary directory.
func keep(t *testing.T, name string, png []byte) string {
	dir := os.Getenv("VEIL_TEST_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	out := filepath.Join(dir, name)
	os.WriteFile(out, png, 0o644)
	return out
}

// checkPNG fails unless b is a PNG at least w×h with real content: many
// colours, not a blank page.
func checkPNG(tb testing.TB, b []byte, w, h int) {
	tb.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		tb.Fatalf("screenshot is not a PNG: %v", err)
	}
	r := img.Bounds()
	if r.Dx() < w || r.Dy() < h {
		tb.Errorf("screenshot is %dx%d, want at least %dx%d", r.Dx(), r.Dy(), w, h)
	}
	if n := colours(img); n < 8 {
		tb.Errorf("screenshot has %d colours: blank", n)
	}
}

func colours(img image.Image) int {
	seen := map[[4]uint32]bool{}
	r := img.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y += 2 {
		for x := r.Min.X; x < r.Max.X; x += 2 {
			cr, cg, cb, ca := img.At(x, y).RGBA()
			seen[[4]uint32{cr, cg, cb, ca}] = true
		}
	}
	return len(seen)
}
