package webproxy

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// vectors reads the XSS corpora of testdata (see its README): DOMPurify's
// test payloads and PayloadsAllTheThings' XSS lists.
func vectors(tb testing.TB) map[string][]string {
	tb.Helper()
	out := map[string][]string{}
	b, err := os.ReadFile("testdata/dompurify/payloads.json")
	if err != nil {
		tb.Fatal(err)
	}
	var dp []struct{ Title, Payload string }
	if err := json.Unmarshal(b, &dp); err != nil {
		tb.Fatal(err)
	}
	for _, v := range dp {
		out["dompurify"] = append(out["dompurify"], v.Payload)
	}
	files, err := filepath.Glob("testdata/payloadsallthethings/*.txt")
	if err != nil || len(files) == 0 {
		tb.Fatalf("no PayloadsAllTheThings lists: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				out[filepath.Base(f)] = append(out[filepath.Base(f)], line)
			}
		}
	}
	return out
}

// TestCorpus runs every vector of the corpora, alone and in the places a
// page could put it (the body, the head, SVG, MathML, a table, a
// <noscript>), through the rewriter and reads each result as a browser
// would: nothing may be left that runs a script or leads outside the
// proxy.
func TestCorpus(t *testing.T) {
	base, _ := url.Parse("https://site.example/dir/page.html")
	contexts := []string{
		"%s",
		"<!doctype html><html><head><title>t</title></head><body><p>before</p>%s<p>after</p></body></html>",
		"<html><head>%s</head><body></body></html>",
		"<svg>%s</svg>",
		"<math><mtext>%s</mtext></math>",
		"<svg><foreignObject>%s</foreignObject></svg>",
		"<table><tr><td>%s</td></tr></table>",
		"<noscript>%s</noscript>",
		"<form action=https://f.example/>%s</form>",
		`<div style="%s">`,
		`<a href="%s">x</a>`,
	}
	n := 0
	for set, vs := range vectors(t) {
		t.Run(set, func(t *testing.T) {
			for _, v := range vs {
				for _, c := range contexts {
					page := strings.Replace(c, "%s", v, 1)
					rw := &rewriter{base: base, path: "/proxy"}
					var out strings.Builder
					if err := rw.html(&out, strings.NewReader(page), "text/html", `<div id="banner"></div>`); err != nil {
						t.Errorf("%s: %v", page, err)
						continue
					}
					n++
					if why := leak(out.String()); why != "" {
						t.Errorf("%s:\n%s\n=>\n%s", why, page, out.String())
					}
				}
			}
		})
	}
	if n < 5000 {
		t.Errorf("only %d pages checked: the corpora are not all there", n)
	}
}
