package webproxy

import (
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// FuzzRewrite: whatever a page holds, the rewritten page, read again as a
// browser would tokenize it, has no element the proxy drops, no event
// handler, and no URL attribute that leads anywhere but the proxy.
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
		if err := rw.html(&out, strings.NewReader(page), ""); err != nil {
			return
		}
		z := html.NewTokenizer(strings.NewReader(out.String()))
		for {
			tt := z.Next()
			if tt == html.ErrorToken {
				return
			}
			if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
				continue
			}
			tok := z.Token()
			if dropped[tok.Data] || tok.Data == "base" {
				t.Fatalf("<%s> survived:\n%s\n=>\n%s", tok.Data, page, out.String())
			}
			for _, a := range tok.Attr {
				k := strings.ToLower(a.Key)
				if strings.HasPrefix(k, "on") {
					t.Fatalf("handler %s survived:\n%s\n=>\n%s", a.Key, page, out.String())
				}
				if urlAttrs[k] && !safeURL(a.Val) {
					t.Fatalf("%s=%q leads outside the proxy:\n%s\n=>\n%s", a.Key, a.Val, page, out.String())
				}
			}
		}
	})
}

// safeURL reports whether a rewritten URL attribute stays on the page,
// goes through the proxy, or is inline data.
func safeURL(v string) bool {
	v = strings.TrimSpace(v)
	return v == "" || strings.HasPrefix(v, "#") || strings.HasPrefix(v, "/proxy?url=") || strings.HasPrefix(v, "data:")
}
