package browser

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// proxyVectors are pages that try to get past the proxy's rewriting; {O}
// is the origin. Each marks what would leak with a /leak/ path on the
// origin, and a script that ran calls veilRan or alert.
var proxyVectors = []string{
	// A <style> inside <svg> or <math> holds markup, not CSS.
	`<svg><style><a id="full" href="{O}/leak/svg-a" style="position:fixed;inset:0;display:block;background:#eee">svg link</a>` +
		`<form action="{O}/leak/svg-form"><input type="submit" value="go"></form><img src="{O}/leak/svg-img">` +
		`<base href="{O}/leak/base/"><meta http-equiv="refresh" content="0;url={O}/leak/svg-refresh"></style></svg><a href="rel">relative</a>`,
	// What breaks out of foreign content (<p>, <b>, <img>) is HTML again,
	// so a link inside it is a link.
	`<svg><style><p><a href="{O}/leak/breakout" style="position:fixed;inset:0;display:block;background:#eee">the whole page</a></p></style></svg>`,
	`<math><style><b><a href="{O}/leak/math-breakout" style="position:fixed;inset:0;display:block">m</a></b></style></math>`,
	`<math><style><a href="{O}/leak/math-a" style="display:block;width:300px;height:300px">math link</a><img src="{O}/leak/math-img" onerror="veilRan('math')"></style></math>`,
	`<math><mtext><table><mglyph><style><img src="{O}/leak/mglyph" onerror="veilRan('mglyph')"><a href="{O}/leak/mglyph-a">m</a>`,
	`<svg></p><style><a id="</style><img src=1 onerror=veilRan('confusion')><a href={O}/leak/confusion>c</a>">`,
	`<svg width="200" height="200"><a xlink:href="{O}/leak/xlink"><rect width="200" height="200" fill="red"/></a>` +
		`<a href="javascript:veilRan('svg-js')"><circle cx="50" cy="50" r="40"/></a>` +
		`<animate xlink:href="#x" attributeName="href" values="{O}/leak/animate"/><a id="x"><text y="180">anim</text></a></svg>`,
	`<a href="{O}/leak/full-page" style="position:fixed;inset:0;display:block">the whole page is a link</a>`,
	`<map name="m"><area shape="rect" coords="0,0,100,100" href="{O}/leak/area"></map><img usemap="#m" src="/pic.png" width="100" height="100">`,
	`<form action="{O}/leak/form" method="post"><input name="q" value="v"><button formaction="{O}/leak/formaction">b</button>` +
		`<input type="submit"><input type="image" src="{O}/leak/input-image" width="20" height="20"></form>`,
	`<a href="javascript:veilRan('js')">js</a><a href="  java&#x09;script:veilRan('tab')">tab</a><a href="/\127.0.0.1/leak/backslash">bs</a>` +
		`<iframe srcdoc="<script>veilRan('srcdoc')</script>"></iframe><object data="{O}/leak/object"></object><embed src="{O}/leak/embed">`,
	`<style>@import'{O}/leak/import';body{background:url({O}/leak/bg)}</style>` +
		`<div style="background:image-set('{O}/leak/image-set' 1x);width:50px;height:50px">i</div><p style="background:u\72l({O}/leak/escaped)">e</p>`,
	`<link rel="prefetch" href="{O}/leak/prefetch"><link rel="preconnect" href="{O}"><link rel="stylesheet preload" href="{O}/leak/preload.css">` +
		`<meta http-equiv="refresh" content="0;url={O}/leak/refresh"><a href="{O}/ok">ok</a>`,
	`<noscript><a href="{O}/leak/noscript">n</a></noscript><template><a href="{O}/leak/template">t</a></template><details open><summary>s</summary><a href="{O}/inner">in</a></details>`,
	`<button onclick="veilRan('onclick')">on</button><img src="x" onerror="veilRan('onerror')"><body onload="veilRan('onload')"><svg onload="veilRan('svgload')"></svg>`,
}

// corpusVectors are the XSS corpora's vectors that a click test adds to:
// PayloadsAllTheThings' quick list and DOMPurify's SVG and MathML ones.
func corpusVectors(tb testing.TB) []string {
	tb.Helper()
	const dir = "../../internal/tools/webproxy/testdata/"
	b, err := os.ReadFile(dir + "payloadsallthethings/xss_payloads_quick.txt")
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	b, err = os.ReadFile(dir + "dompurify/payloads.json")
	if err != nil {
		tb.Fatal(err)
	}
	var dp []struct{ Payload string }
	if err := json.Unmarshal(b, &dp); err != nil {
		tb.Fatal(err)
	}
	for _, v := range dp {
		if p := strings.ToLower(v.Payload); strings.Contains(p, "<svg") || strings.Contains(p, "<math") {
			out = append(out, v.Payload)
		}
	}
	return out
}

// watch records, for one tab, every request it makes, every script that
// runs (a call of the veilRan binding, a dialog, a console call) and the
// navigations in flight.
type watch struct {
	mu       sync.Mutex
	requests []string
	scripts  []string
	activity int // navigations asked for and loads begun
	started  int // loads begun
	loaded   int // loads ended
}

func (w *watch) listen(tb testing.TB, ctx context.Context) {
	tb.Helper()
	if err := chromedp.Listen(ctx, func(ev any) {
		w.mu.Lock()
		defer w.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			w.requests = append(w.requests, e.Request.URL)
		case *runtime.EventBindingCalled:
			w.scripts = append(w.scripts, "veilRan("+e.Payload+")")
		case *runtime.EventConsoleAPICalled:
			w.scripts = append(w.scripts, "console."+string(e.Type))
		case *page.EventJavascriptDialogOpening:
			w.scripts = append(w.scripts, "dialog "+e.Message)
			go chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		case *page.EventFrameRequestedNavigation:
			w.activity++
		case *page.EventFrameStartedLoading:
			w.activity++
			w.started++
		case *page.EventFrameStoppedLoading:
			w.loaded++
		}
	}); err != nil {
		tb.Fatal(err)
	}
	for _, err := range []error{
		callErr(chromedp.Call(ctx, network.Enable, network.EnableParams{})),
		callErr(chromedp.Call(ctx, runtime.Enable, cdp.Empty{})),
		callErr(chromedp.Call(ctx, page.Enable, page.EnableParams{})),
		callErr(chromedp.Call(ctx, runtime.AddBinding, runtime.AddBindingParams{Name: "veilRan"})),
	} {
		if err != nil {
			tb.Fatal(err)
		}
	}
}

func callErr[T any](_ T, err error) error { return err }

// settle waits for a navigation that a click set off to end. The bounds
// only keep a stuck page from hanging the test; nothing is asserted on
// time.
func (w *watch) settle(before watchMark) {
	// A click asks for its navigation as it is handled; a quarter second
	// is room to spare. A navigation asked for begins to load, or is
	// refused (javascript:), within two.
	if !w.until(250*time.Millisecond, func() bool { return w.activity > before.activity }) {
		return
	}
	w.until(2*time.Second, func() bool { return w.started > before.started })
	w.until(10*time.Second, func() bool { return w.loaded >= w.started })
}

// watchMark is where the watch's counts stood.
type watchMark struct{ activity, started int }

func (w *watch) mark() watchMark {
	w.mu.Lock()
	defer w.mu.Unlock()
	return watchMark{w.activity, w.started}
}

// until polls cond, under the lock, for up to d.
func (w *watch) until(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; time.Sleep(10 * time.Millisecond) {
		w.mu.Lock()
		ok := cond()
		w.mu.Unlock()
		if ok || time.Now().After(end) {
			return ok
		}
	}
}

func (w *watch) take() (requests, scripts []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	requests, scripts = w.requests, w.scripts
	w.requests, w.scripts = nil, nil
	return requests, scripts
}

// clickable is what a visitor can click or activate on a page.
const clickable = "a, area, button, input[type=submit], input[type=image], input[type=button], summary, label"

// TestWebProxyVectors loads pages made to get past the proxy's rewriting
// (the SVG and MathML <style> ones, full-page links, forms, image maps,
// CSS imports) and a sample of the XSS corpora through the proxy in
// Chromium, clicks each link, area, button and submit on them one by one,
// and records every request the browser makes: none may go anywhere but
// the proxy, and no script may run, with or without a click.
func TestWebProxyVectors(t *testing.T) {
	ctx := browserFor(t, 10*time.Minute)
	srv := site(t)
	var direct atomic.Int32
	var directPaths sync.Map
	originMux := http.NewServeMux()
	vectors := append(append([]string{}, proxyVectors...), corpusVectors(t)...)
	var originURL string
	originMux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/sanity" && r.Header.Get("User-Agent") != "Mozilla/5.0 (compatible; Veil web proxy)" {
			direct.Add(1)
			directPaths.Store(r.URL.Path, true)
		}
		w.Header().Set("Content-Type", "text/html")
		switch {
		case r.URL.Path == "/sanity":
			fmt.Fprint(w, `<link rel="icon" href="data:,"><script>veilRan("direct")</script><p>direct</p>`)
		case r.URL.Path == "/pic.png":
			w.Header().Set("Content-Type", "image/png")
			w.Write(testPNG(100, 100))
		case strings.HasPrefix(r.URL.Path, "/v/"):
			var i int
			fmt.Sscan(strings.TrimPrefix(r.URL.Path, "/v/"), &i)
			if i >= 0 && i < len(vectors) {
				fmt.Fprint(w, "<!doctype html><html><head><title>vector</title></head><body>"+strings.ReplaceAll(vectors[i], "{O}", originURL)+"</body></html>")
			}
		default:
			fmt.Fprintf(w, `<p id="landed">%s</p>`, r.URL.Path)
		}
	})
	origin := httptest.NewServer(originMux)
	t.Cleanup(origin.Close)
	originURL = origin.URL

	w := &watch{}
	w.listen(t, ctx)
	// The watch sees a script that runs: a page opened straight from the
	// origin, not through the proxy, runs its own.
	if err := chromedp.Do(ctx, chromedp.Navigate(origin.URL+"/sanity")); err != nil {
		t.Fatal(err)
	}
	w.settle(watchMark{})
	if _, scripts := w.take(); len(scripts) == 0 {
		t.Fatal("a page's script ran outside the proxy and the watch did not see it: the test cannot see scripts")
	}

	proxyPrefix := srv.URL + "/"
	clicks := 0
	for i, v := range vectors {
		at := srv.URL + "/proxy?url=" + url.QueryEscape(fmt.Sprintf("%s/v/%d", origin.URL, i))
		load := func() []*chromedp.Node {
			// A navigation the last click began late may abort this one:
			// it is tried again once that one ended.
			err := chromedp.Do(ctx, chromedp.Navigate(at))
			if err != nil {
				w.settle(watchMark{})
				err = chromedp.Do(ctx, chromedp.Navigate(at))
			}
			if err != nil {
				t.Fatalf("vector %d: %v", i, err)
			}
			nodes, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSSAll(clickable), chromedp.AtLeast(0)))
			if err != nil {
				t.Fatalf("vector %d: %v", i, err)
			}
			return nodes
		}
		nodes := load()
		for k := 0; k < len(nodes); k++ {
			if k > 0 {
				if nodes = load(); k >= len(nodes) {
					break
				}
			}
			before := w.mark()
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := chromedp.Do(cctx, chromedp.MouseClickNode(nodes[k])); err != nil {
				// Hidden or without a box (an <area>): activate it from
				// the keyboard instead.
				chromedp.Do(cctx, chromedp.KeyEventNode(nodes[k], "\r"))
			}
			cancel()
			clicks++
			w.settle(before)
			checkTraffic(t, w, proxyPrefix, fmt.Sprintf("vector %d, click %d (<%s>)", i, k, nodes[k].LocalName), v)
		}
		checkTraffic(t, w, proxyPrefix, fmt.Sprintf("vector %d, no click", i), v)
	}
	if n := direct.Load(); n != 0 {
		var paths []string
		directPaths.Range(func(k, _ any) bool { paths = append(paths, k.(string)); return true })
		t.Errorf("the origin was reached %d times other than through the proxy: %v", n, paths)
	}
	if clicks < len(proxyVectors) {
		t.Errorf("only %d clicks on %d pages: the pages did not load as they should", clicks, len(vectors))
	}
	t.Logf("%d pages, %d clicks", len(vectors), clicks)
}

// checkTraffic fails on any request since the last check that went
// elsewhere than the proxy, and on any script that ran.
func checkTraffic(t *testing.T, w *watch, proxyPrefix, where, vector string) {
	t.Helper()
	requests, scripts := w.take()
	for _, r := range requests {
		if !strings.HasPrefix(r, proxyPrefix) && !strings.HasPrefix(r, "data:") && r != "about:blank" {
			t.Errorf("%s: a request to %s, not through the proxy; vector:\n%s", where, r, vector)
		}
	}
	for _, s := range scripts {
		t.Errorf("%s: a script ran (%s); vector:\n%s", where, s, vector)
	}
}

// testPNG is a w×h PNG of many colours.
func testPNG(w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}
