package browser

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"veil/integration/harness"
	"veil/internal/i18n"
	"veil/internal/web"
)

// axeSource is axe-core's browser bundle, vendored from the npm registry
// (testdata/axe-core/VERSION) so that the test runs offline.
//
//go:embed testdata/axe-core/axe.min.js
var axeSource string

// shopPages are the provider's own pages, where the crawl starts besides
// the menus: each must answer in every language like the rest.
var shopPages = []string{"/signup", "/pricing", "/download", "/affiliate"}

// missingPage is a path no route has: the site's 404 page, checked like
// the others.
const missingPage = "/no-such-page"

// TestEveryPage opens every page of the site, in every language, at a
// desktop and a phone width, against a whole service: it keeps a
// full-page screenshot of each, fails on a page wider than a 390-pixel
// phone, on any request to a host other than the service's, and on any
// serious or critical axe-core violation.
func TestEveryPage(t *testing.T) {
	ctx := browserFor(t, 30*time.Minute)
	env := harness.Start(t, harness.Options{})
	base := env.Svc.URL()
	baseURL, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	paths := sitePages(t, base)
	if only := os.Getenv("VEIL_TEST_PAGES"); only != "" {
		// A developer's shortcut: check these pages alone.
		paths = strings.Split(only, ",")
	}
	t.Logf("%d pages × %d languages: %s", len(paths), len(i18n.Langs), strings.Join(paths, " "))

	dir := os.Getenv("VEIL_TEST_ARTIFACTS")
	if dir == "" {
		if dir, err = os.MkdirTemp("", "veil-pages-"); err != nil {
			t.Fatal(err)
		}
	}
	dir = filepath.Join(dir, "pages")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots kept in %s", dir)

	// Every request the browser makes, by the page that made it.
	var (
		mu      sync.Mutex
		current string
		foreign = map[string][]string{}
	)
	err = chromedp.Listen(ctx, func(ev any) {
		e, ok := ev.(*network.EventRequestWillBeSent)
		if !ok {
			return
		}
		u, err := url.Parse(e.Request.URL)
		if err != nil || u.Scheme == "data" || u.Scheme == "blob" || u.Scheme == "about" || u.Host == baseURL.Host {
			return
		}
		mu.Lock()
		foreign[current] = append(foreign[current], e.Request.URL)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}

	// Every page must answer; only missingPage is the site's 404 page.
	notFound := notFoundTitle(t, base)
	type target struct{ lang, path, url string }
	var targets []target
	for _, l := range i18n.Langs {
		for _, p := range paths {
			u := base + langPath(l.Code, p)
			status, title := get(t, u, l.Code)
			switch {
			case p == missingPage:
				if status != http.StatusNotFound || title != notFound[l.Code] {
					t.Errorf("%s: status %d, title %q; want the site's 404 page", u, status, title)
				}
			case status != http.StatusOK:
				t.Errorf("%s: status %d (%q)", langPath(l.Code, p), status, title)
				continue
			}
			targets = append(targets, target{l.Code, p, u})
		}
	}

	axeCheck(t, ctx)

	start := time.Now()
	axeRuns := 0
	var inLoad, inShot, inAxe time.Duration
	for _, width := range []struct {
		w, h int
		axe  bool
	}{{1280, 900, true}, {390, 844, false}} {
		if _, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: int64(width.w), Height: int64(width.h), DeviceScaleFactor: 1}); err != nil {
			t.Fatal(err)
		}
		for _, tg := range targets {
			label := fmt.Sprintf("%s (%s) at %d", tg.path, tg.lang, width.w)
			mu.Lock()
			current = label
			mu.Unlock()
			t0 := time.Now()
			if err := chromedp.Do(ctx, chromedp.Navigate(tg.url)); err != nil {
				t.Errorf("%s: %v", label, err)
				continue
			}
			t1 := time.Now()
			shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(70))
			inLoad, inShot = inLoad+t1.Sub(t0), inShot+time.Since(t1)
			if err != nil {
				t.Errorf("%s: screenshot: %v", label, err)
				continue
			}
			name := fmt.Sprintf("%s-%s-%d.jpg", tg.lang, fileName(tg.path), width.w)
			if err := os.WriteFile(filepath.Join(dir, name), shot, 0o644); err != nil {
				t.Fatal(err)
			}
			if width.w == 390 {
				if o := overflow(t, ctx); o != "" {
					t.Errorf("%s: wider than the screen: %s", label, o)
				}
			}
			if width.axe {
				axeRuns++
				t0 := time.Now()
				for _, v := range axeViolations(t, ctx) {
					t.Errorf("%s: axe %s", label, v)
				}
				inAxe += time.Since(t0)
			}
		}
	}
	t.Logf("%d loads and %d axe runs in %s (loading %s, screenshots %s, axe %s)", 2*len(targets), axeRuns,
		time.Since(start).Round(time.Second), inLoad.Round(time.Second), inShot.Round(time.Second), inAxe.Round(time.Second))

	mu.Lock()
	defer mu.Unlock()
	for page, urls := range foreign {
		t.Errorf("%s: requests to another host: %s", page, strings.Join(urls, ", "))
	}
}

// sitePages lists the site's pages: the navigation's, the footer's, the
// pending ones, the help guides and blog posts, and every page these link
// to (so that a page added and linked is checked too), and the 404 page.
func sitePages(tb testing.TB, base string) []string {
	tb.Helper()
	var queue []string
	for _, list := range [][]web.NavItem{web.Nav, web.Tools, web.Footer} {
		for _, it := range list {
			queue = append(queue, it.Path)
		}
	}
	queue = append(queue, "/vpn", "/servers", "/help", "/blog", "/account", "/support", "/privacy")
	queue = append(queue, shopPages...)
	seen := map[string]bool{}
	var out []string
	href := regexp.MustCompile(`href="(/[^"#?]*)`)
	for len(queue) > 0 && len(out) < 300 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, p)
		body := fetch(tb, base+p)
		for _, m := range href.FindAllStringSubmatch(body, -1) {
			if l, ok := linkedPage(m[1]); ok && !seen[l] {
				queue = append(queue, l)
			}
		}
	}
	return append(out, missingPage)
}

// linkedPage is the English page a link leads to, or false for what is
// not a page (static files, the API, the feed, forms' targets).
func linkedPage(p string) (string, bool) {
	if _, tail, ok := i18n.FromPath(p); ok {
		p = tail
	}
	for _, not := range []string{"/static/", "/api/", "/account/", "/support/", "/admin"} {
		if strings.HasPrefix(p, not) {
			return "", false
		}
	}
	if strings.HasSuffix(p, ".atom") || strings.HasSuffix(p, ".json") || strings.HasSuffix(p, ".txt") {
		return "", false
	}
	return p, true
}

// langPath is p in the language code.
func langPath(code, p string) string {
	pre := i18n.Prefix(code)
	if p == "/" && pre != "" {
		return pre
	}
	return pre + p
}

func fileName(p string) string {
	if p == "/" {
		return "home"
	}
	return strings.ReplaceAll(strings.Trim(p, "/"), "/", "_")
}

var titleRE = regexp.MustCompile(`(?s)<title>(.*?)</title>`)

// get asks for u as a browser would, giving the status and the title.
func get(tb testing.TB, u, lang string) (int, string) {
	tb.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Accept", "text/html")
	req.Header.Set("Accept-Language", lang)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	title := ""
	if m := titleRE.FindSubmatch(b); m != nil {
		title = strings.TrimSpace(string(m[1]))
	}
	return resp.StatusCode, title
}

func fetch(tb testing.TB, u string) string {
	tb.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Accept", "text/html")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// notFoundTitle is the title of the site's 404 page in each language.
func notFoundTitle(tb testing.TB, base string) map[string]string {
	tb.Helper()
	out := map[string]string{}
	for _, l := range i18n.Langs {
		_, out[l.Code] = get(tb, base+langPath(l.Code, "/surely/not/a/page"), l.Code)
	}
	return out
}

// overflowJS finds, when the page is wider than the window, the element
// that reaches furthest right (the deepest one of those that reach as
// far).
const overflowJS = `(() => {
	const vw = window.innerWidth, sw = document.documentElement.scrollWidth;
	if (sw <= vw) return "";
	let worst = null, right = vw + 0.5;
	const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT);
	const range = document.createRange();
	for (let n = walk.nextNode(); n; n = walk.nextNode()) {
		let r;
		if (n.nodeType === Node.TEXT_NODE) {
			if (!n.textContent.trim()) continue;
			range.selectNodeContents(n);
			r = range.getBoundingClientRect();
		} else {
			r = n.getBoundingClientRect();
		}
		if (r.width > 0 && r.right >= right) { right = r.right; worst = n; }
	}
	if (!worst) return "scrollWidth " + sw + " > innerWidth " + vw + "; no element reaches past the window";
	let text = "";
	if (worst.nodeType === Node.TEXT_NODE) { text = worst.textContent; worst = worst.parentElement; }
	else text = worst.textContent || "";
	const path = [];
	for (let e = worst; e && e !== document.body && path.length < 4; e = e.parentElement) {
		path.unshift(e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") +
			(typeof e.className === "string" && e.className.trim() ? "." + e.className.trim().split(/\s+/).join(".") : ""));
	}
	text = text.trim().replace(/\s+/g, " ").slice(0, 60);
	return "scrollWidth " + sw + " > innerWidth " + vw + "; widest: " + path.join(" > ") + (text ? " «" + text + "»" : "") +
		" (right edge at " + Math.round(right) + ")";
})()`

func overflow(tb testing.TB, ctx context.Context) string {
	tb.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](overflowJS))
	if err != nil {
		tb.Fatalf("measuring the page: %v", err)
	}
	return s
}

// axeJS runs axe-core on the page and lists the serious and critical
// violations, one line each: rule, impact, the elements.
const axeJS = `axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations
	.filter(v => v.impact === "serious" || v.impact === "critical")
	.map(v => v.id + " (" + v.impact + ": " + v.help + ") at " + v.nodes.map(n => n.target.join(" ")).slice(0, 5).join(", ") +
		(v.nodes.length > 5 ? " and " + (v.nodes.length - 5) + " more" : "")))`

// axeCheck makes sure axe-core finds what it should: a page with an image
// that has no text alternative and grey on grey text.
func axeCheck(tb testing.TB, ctx context.Context) {
	tb.Helper()
	bad := "data:text/html," + url.PathEscape(`<!doctype html><html lang="en"><title>bad</title><main><img src="data:,"><p style="color:#bbb;background:#ccc">faint</p></main></html>`)
	if err := chromedp.Do(ctx, chromedp.Navigate(bad)); err != nil {
		tb.Fatal(err)
	}
	got := strings.Join(axeViolations(tb, ctx), "\n")
	for _, rule := range []string{"image-alt", "color-contrast"} {
		if !strings.Contains(got, rule+" ") {
			tb.Fatalf("axe-core does not report %s on a page that breaks it; it says:\n%s", rule, got)
		}
	}
}

func axeViolations(tb testing.TB, ctx context.Context) []string {
	tb.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[*runtime.RemoteObject](axeSource)); err != nil {
		tb.Fatalf("loading axe-core: %v", err)
	}
	out, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](axeJS, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.Fatalf("running axe-core: %v", err)
	}
	return out
}
