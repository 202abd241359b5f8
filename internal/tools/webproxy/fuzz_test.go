package webproxy

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzRewrite: whatever a page holds, the rewritten page, read again as a
// browser would parse it, has nothing outside the allow-lists, no event
// handler, and no URL that leads anywhere but the proxy (leak).
//
//	go test -run '^$' -fuzz FuzzRewrite -fuzztime 60s -parallel 1 ./internal/tools/webproxy
func FuzzRewrite(f *testing.F) {
	for _, seed := range []string{
		`<html><body><a href="http://x.example/">x</a><script>alert(1)</script></body></html>`,
		`<img src=//evil.example/p.gif onerror=alert(1)><iframe src=x></iframe>`,
		`<svg><a xlink:href="https://s.example/">s</a><script>1</script></svg>`,
		`<scr<script>ipt>alert(1)</script>`,
		`<noscript><img src="https://n.example/"></noscript><style>a{background:url(https://c.example/x)}</style>`,
		`<a href="  javascript:alert(1)">j</a><form action="https://f.example/"><button formaction="https://g.example/">b</button></form>`,
		`<link rel="stylesheet preload" href="https://l.example/s.css"><meta http-equiv="refresh" content="0;url=https://r.example/">`,
		`<object data="https://o.example/"></object><embed src="https://e.example/"><base href="https://b.example/">`,
		`<div style="background-image:url('https://d.example/a.png')"></div><img srcset="https://s.example/1.png 1x, /2.png 2x">`,
	} {
		f.Add(seed)
	}
	base, _ := url.Parse("https://page.example/dir/")
	f.Fuzz(func(t *testing.T, page string) {
		rw := &rewriter{base: base, path: "/proxy"}
		var out strings.Builder
		if err := rw.html(&out, strings.NewReader(page), "text/html", ""); err != nil {
			return
		}
		if why := leak(out.String()); why != "" {
			t.Fatalf("%s:\n%s\n=>\n%s", why, page, out.String())
		}
	})
}
