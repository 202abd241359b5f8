package webproxy

import (
	"net/url"
	"strings"
	"testing"
)

// TestRewriteTree: what the browser builds from the page is what is
// rewritten. Inside <svg> and <math> a <style> holds markup, not a style
// sheet; the links, forms, images, <base> and refreshes there must not
// pass as text. And style sheets are read as CSS reads them.
func TestRewriteTree(t *testing.T) {
	base, _ := url.Parse("https://site.example/dir/page.html")
	p := func(abs string) string { return "/proxy?url=" + url.QueryEscape(abs) }
	for _, tc := range []struct {
		name, page    string
		must, mustNot []string
	}{
		{"svg style holds markup",
			`<svg><style><a href="https://evil.example/">click</a><base href="https://evil.example/"><form action="https://evil.example/"><input type=submit></form>` +
				`<img src="https://evil.example/i.png"><meta http-equiv=refresh content="0;url=https://evil.example/"></style></svg>`,
			[]string{`<a href="` + p("https://evil.example/") + `">click</a>`, `src="` + p("https://evil.example/i.png") + `"`},
			[]string{`"https://evil.example`, "<base", "refresh", `<form`}},
		{"math style holds markup",
			`<math><mtext><style><a href="https://evil.example/">m</a></style></mtext></math><math><style><a href="https://evil.example/">n</a></style></math>`,
			nil, []string{"evil.example", "<math", "<a"}},
		{"HTML inside SVG goes",
			`<svg><foreignObject><a href="https://evil.example/">f</a></foreignObject><desc><a href="https://evil.example/">d</a></desc></svg>`,
			[]string{"<svg><desc></desc></svg>"}, []string{"evil.example", "foreignObject"}},
		{"namespace confusion",
			`<svg></p><style><a id="</style><img src=1 onerror=alert(1)>">`,
			[]string{`<img src="` + p("https://site.example/dir/1") + `"/>`}, []string{"onerror"}},
		{"svg links and animations",
			`<svg><a xlink:href="javascript:alert(1)"><rect fill="url(https://evil.example/#g)" width=10 height=10 /></a>` +
				`<a href="https://s.example/">s</a><animate attributeName=href to=javascript:alert(1) /><use href="https://evil.example/s.svg#a"/></svg>`,
			[]string{`<a><rect fill="url(&#34;` + p("https://evil.example/") + `#g&#34;)"`, `<a href="` + p("https://s.example/") + `">s</a>`},
			[]string{"javascript", "<animate", "<use"}},
		{"@import without a space, image-set, src()",
			`<style>@import'https://evil.example/x.css';@IMPORT"y.css";@import url(z.css) screen;a{background:image-set("a b.png" 1x, url(c.png) 2x)}` +
				`@font-face{src:url(f.woff) format("woff"),src("g.woff")}</style>`,
			[]string{`@import"` + p("https://evil.example/x.css") + `"`, `@IMPORT"` + p("https://site.example/dir/y.css") + `"`,
				`@import url("` + p("https://site.example/dir/z.css") + `") screen`,
				`image-set("` + p("https://site.example/dir/a%20b.png") + `" 1x, url("` + p("https://site.example/dir/c.png") + `") 2x)`,
				`format("woff")`, `src("` + p("https://site.example/dir/g.woff") + `")`},
			[]string{`"https://`, "a b.png"}},
		{"an escaped url( drops the sheet",
			`<style>b{background:\75 rl(https://evil.example/)}</style><p style="background:u\72l(https://evil.example/)">x</p>`,
			[]string{"<style></style>", `<p style="">`}, []string{"evil.example"}},
		{"URLs read as a browser reads them",
			`<p style="background:url( 'x y.png?a b' )">x</p><a href="java&#x09;script:alert(1)">j</a><a href="/\evil.example/">bs</a><a href="https://x.example/a?b c#frag">q</a>`,
			[]string{`url(&#34;` + p("https://site.example/dir/x%20y.png?a%20b") + `&#34;)`, `<a>j</a>`,
				`<a href="` + p("https://evil.example/") + `">bs</a>`, `<a href="` + p("https://x.example/a?b%20c") + `#frag">q</a>`},
			[]string{"javascript"}},
		{"srcset as browsers split it",
			`<img srcset="data:image/png;base64,AA,BB 1x, https://o.example/b.png 2x,c.png"><a href="data:text/html,<script>1</script>">d</a>`,
			[]string{`srcset="data:image/png;base64,AA,BB 1x, ` + p("https://o.example/b.png") + ` 2x, ` + p("https://site.example/dir/c.png") + `"`, "<a>d</a>"},
			[]string{"data:text"}},
		{"base anywhere counts",
			`<a href="x">x</a><base href="https://cdn.example/b/">`,
			[]string{`href="` + p("https://cdn.example/b/x") + `"`}, []string{"<base"}},
		{"unknown elements keep their text",
			`<custom-el onclick=x()>kept <b>bold</b></custom-el><marquee>m</marquee>`,
			[]string{"kept <b>bold</b>", "m"}, []string{"custom-el", "onclick", "marquee"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rw := &rewriter{base: base, path: "/proxy"}
			var out strings.Builder
			if err := rw.html(&out, strings.NewReader(tc.page), "text/html", ""); err != nil {
				t.Fatal(err)
			}
			got := out.String()
			for _, m := range tc.must {
				if !strings.Contains(got, m) {
					t.Errorf("lacks %s:\n%s", m, got)
				}
			}
			for _, m := range tc.mustNot {
				if strings.Contains(got, m) {
					t.Errorf("still holds %s:\n%s", m, got)
				}
			}
			if why := leak(got); why != "" {
				t.Errorf("%s:\n%s", why, got)
			}
		})
	}
}

// TestRewriteCharset: a page in another encoding is decoded before it is
// read and sent on as UTF-8, so that the proxy and the browser read the
// same characters.
func TestRewriteCharset(t *testing.T) {
	base, _ := url.Parse("https://site.example/")
	rw := &rewriter{base: base, path: "/proxy"}
	var out strings.Builder
	page := "<meta charset=\"iso-8859-1\"><p>caf\xe9</p>"
	if err := rw.html(&out, strings.NewReader(page), "text/html", ""); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.Contains(got, "<p>café</p>") || strings.Contains(got, "charset") {
		t.Errorf("ISO-8859-1 page rewritten to %q", got)
	}
	// Nested deeper than the parser goes: a notice, not a half page.
	out.Reset()
	if err := rw.html(&out, strings.NewReader(strings.Repeat("<div>", 600)), "text/html", ""); err != nil || !strings.Contains(out.String(), "nested too deeply") {
		t.Errorf("a deep page: %v %q", err, out.String())
	}
}
