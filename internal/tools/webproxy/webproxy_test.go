package webproxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"

	"veil/internal/netguard"
)

func TestRewrite(t *testing.T) {
	base, _ := url.Parse("https://site.example/dir/page.html")
	rw := &rewriter{base: base, path: "/proxy"}
	p := func(abs string) string { return "/proxy?url=" + url.QueryEscape(abs) }
	page := `<!doctype html><html><head><base href="https://cdn.example/b/">
<meta http-equiv="refresh" content="0;url=https://elsewhere.example/">
<link rel="preconnect" href="https://tracker.example"><link rel="stylesheet" href="s.css" integrity="sha384-x">
<style>body{background:url('bg.png')}</style><script>alert(1)</script><noscript><img src="https://px.example/n.gif"></noscript>
</head><body onload="x()"><a href="/top" ping="https://ping.example">t</a><a href="javascript:alert(1)">j</a>
<img src="i.png" srcset="a.png 1x, https://o.example/b.png 2x" onerror="y()"><iframe src="https://f.example/"><p>inner</p></iframe>
<svg><script>alert(2)</script><a xlink:href="https://s.example/">s</a></svg><!--[if IE]><img src="https://ie.example/"><![endif]-->
<form action="/search" method="post"><input name="q"><button formaction="https://other.example/">go</button></form>
<p style="background:url(&quot;p.png&quot;)">&lt;b&gt;text&lt;/b&gt;</p><img src="data:image/gif;base64,R0lGOD">
</body></html>`
	var out strings.Builder
	if err := rw.html(&out, strings.NewReader(page), "text/html", "<div id=banner></div>"); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, must := range []string{
		`href="` + p("https://cdn.example/b/s.css") + `"`, // relative to <base>
		`url(&#34;` + p("https://cdn.example/b/p.png") + `&#34;)`,
		`url("` + p("https://cdn.example/b/bg.png") + `")`,
		`href="` + p("https://cdn.example/top") + `"`,
		`src="` + p("https://cdn.example/b/i.png") + `"`,
		p("https://o.example/b.png") + ` 2x`,
		`xlink:href="` + p("https://s.example/") + `"`,
		`<body><div id="banner"></div>`,
		`<form action="/proxy"><input type="hidden" name="url" value="https://cdn.example/search"/>`,
		`&lt;b&gt;text&lt;/b&gt;`,
		`src="data:image/gif;base64,R0lGOD"`,
	} {
		if !strings.Contains(got, must) {
			t.Errorf("the rewritten page lacks %s", must)
		}
	}
	for _, mustNot := range []string{"<script", "alert", "<noscript", "px.example", "<iframe", "inner", "f.example",
		"onload", "onerror", "ping=", "tracker.example", "refresh", "elsewhere.example", "integrity", "javascript:",
		"ie.example", "method=", "formaction", "other.example", "<base"} {
		if strings.Contains(got, mustNot) {
			t.Errorf("the rewritten page still holds %q:\n%s", mustNot, got)
		}
	}
	// Every URL left in an attribute goes through the proxy.
	for _, m := range []string{`href="http`, `src="http`, `url("http`} {
		if strings.Contains(got, m) {
			t.Errorf("a direct URL survived (%s):\n%s", m, got)
		}
	}
}

// origin is a site on loopback that records what it was sent.
type origin struct {
	*httptest.Server
	mu  sync.Mutex
	got []*http.Request
}

func startOrigin(t *testing.T) *origin {
	o := &origin{}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.got = append(o.got, r.Clone(r.Context()))
		o.mu.Unlock()
		w.Header().Set("Set-Cookie", "track=1")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<html><body><a href="/next?x=1">next</a><img src="/img.png"><script>evil()</script>q=`+r.URL.Query().Get("q")+`</body></html>`)
	})
	mux.HandleFunc("/img.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write([]byte("\x89PNG fake"))
	})
	mux.HandleFunc("/pic.svg", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/svg+xml")
		io.WriteString(w, `<svg xmlns="http://www.w3.org/2000/svg"><a href="https://site.example/"><rect width="9" height="9"/></a></svg>`)
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/", http.StatusFound) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, 2<<20)) })
	mux.HandleFunc("/bin", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-msdownload")
		w.Write([]byte("MZ"))
	})
	o.Server = httptest.NewServer(mux)
	t.Cleanup(o.Close)
	return o
}

func proxy(t *testing.T, h *Handler) *httptest.Server {
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, u string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestProxy(t *testing.T) {
	o := startOrigin(t)
	srv := proxy(t, &Handler{Guard: netguard.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, MaxBytes: 1 << 20})
	at := func(u string) string { return srv.URL + "/proxy?url=" + url.QueryEscape(u) }

	resp, body := get(t, at(o.URL+"/"), map[string]string{
		"Cookie": "session=secret", "X-Forwarded-For": "198.51.100.9", "Referer": "https://veil.example/account",
		"User-Agent": "VisitorBrowser/1.0",
	})
	if resp.StatusCode != 200 || !strings.Contains(body, `href="/proxy?url=`+url.QueryEscape(o.URL+"/next?x=1")+`"`) || strings.Contains(body, "evil") {
		t.Fatalf("proxied page: %d\n%s", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "sandbox") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q, want a sandbox loading nothing from elsewhere", csp)
	}
	if resp.Header.Get("Set-Cookie") != "" {
		t.Error("the site's cookie reached the visitor")
	}
	o.mu.Lock()
	sent := o.got[len(o.got)-1]
	o.mu.Unlock()
	for _, h := range []string{"Cookie", "X-Forwarded-For", "Referer", "Forwarded", "X-Real-Ip", "Via"} {
		if v := sent.Header.Get(h); v != "" {
			t.Errorf("the site was sent %s: %q", h, v)
		}
	}
	if ua := sent.Header.Get("User-Agent"); ua != userAgent {
		t.Errorf("the site was sent User-Agent %q, want the proxy's own", ua)
	}

	// Images pass as they are, under the same policy.
	resp, body = get(t, at(o.URL+"/img.png"), nil)
	if resp.Header.Get("Content-Type") != "image/png" || body != "\x89PNG fake" || resp.Header.Get("Content-Security-Policy") != policy {
		t.Errorf("image: %q %q", resp.Header.Get("Content-Type"), body)
	}
	// An SVG shows as an image, but opened by itself (where its links
	// would lead straight to the site) it is a download.
	if resp, _ = get(t, at(o.URL+"/pic.svg"), map[string]string{"Sec-Fetch-Dest": "image"}); resp.Header.Get("Content-Type") != "image/svg+xml" {
		t.Errorf("an SVG loaded as an image: %q", resp.Header.Get("Content-Type"))
	}
	for _, dest := range []string{"document", ""} {
		if resp, _ = get(t, at(o.URL+"/pic.svg"), map[string]string{"Sec-Fetch-Dest": dest}); resp.Header.Get("Content-Disposition") != "attachment" {
			t.Errorf("an SVG opened as a %q: %q, want a download", dest, resp.Header.Get("Content-Type"))
		}
	}
	// Other types are downloads, never rendered.
	if resp, _ = get(t, at(o.URL+"/bin"), nil); resp.Header.Get("Content-Disposition") != "attachment" {
		t.Errorf("a program was served as %q", resp.Header.Get("Content-Type"))
	}
	// A proxied form's fields reach the target; redirects are followed,
	// and the page's links are relative to where they led.
	if _, body = get(t, at(o.URL+"/")+"&q=hello", nil); !strings.Contains(body, "q=hello") {
		t.Errorf("form field: %s", body)
	}
	if _, body = get(t, at(o.URL+"/moved"), nil); !strings.Contains(body, url.QueryEscape(o.URL+"/img.png")) {
		t.Errorf("redirect: %s", body)
	}
	// Too large.
	if resp, _ = get(t, at(o.URL+"/big"), nil); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("a 2 MiB page over a 1 MiB limit: %d", resp.StatusCode)
	}
	// No url: the form.
	if resp, body = get(t, srv.URL+"/proxy", nil); resp.StatusCode != 200 || !strings.Contains(body, `name="url"`) {
		t.Errorf("the form: %d", resp.StatusCode)
	}
	for _, bad := range []string{"ftp://x.example/", "file:///etc/passwd", "http://user:pw@x.example/", "javascript:alert(1)"} {
		if resp, _ := get(t, at(bad), nil); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", bad, resp.StatusCode)
		}
	}
}

// TestGuard: the proxy reaches nothing the egress guard refuses, also
// through a redirect from a permitted site.
func TestGuard(t *testing.T) {
	inside := startOrigin(t) // on loopback: refused without an allow
	srv := proxy(t, &Handler{})
	for _, u := range []string{inside.URL + "/", "http://169.254.169.254/latest/meta-data/", "http://[::1]/", "http://10.0.0.1/"} {
		resp, body := get(t, srv.URL+"/proxy?url="+url.QueryEscape(u), nil)
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "not reached from here") && !strings.Contains(body, "did not answer") {
			t.Errorf("%s: %d", u, resp.StatusCode)
		}
	}
	inside.mu.Lock()
	defer inside.mu.Unlock()
	if len(inside.got) != 0 {
		t.Fatalf("the refused site was reached %d times", len(inside.got))
	}
}

// TestBusy: fetches beyond MaxFetches are turned away with 503 while the
// others run.
func TestBusy(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
		io.WriteString(w, "done")
	}))
	defer slow.Close()
	defer close(release)
	srv := proxy(t, &Handler{Guard: netguard.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, MaxFetches: 1})
	u := srv.URL + "/proxy?url=" + url.QueryEscape(slow.URL+"/")
	go http.Get(u)
	<-started
	resp, _ := get(t, u, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a second fetch while one runs: %d, want 503 with Retry-After", resp.StatusCode)
	}
}
