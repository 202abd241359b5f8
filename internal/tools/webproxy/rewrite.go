package webproxy

import (
	"bytes"
	"io"
	"net/url"
	"regexp"
	"strings"

	"golang.org/x/net/html"
)

// The page rewriting: every URL a page names goes back through the proxy,
// scripts, frames, plug-ins and the elements that make a browser reach out
// by itself are dropped. The proxy's Content-Security-Policy (sandbox, no
// script, nothing from anywhere but the proxy) is the backstop for what
// this misses: a missed URL fails to load instead of leaking the visitor's
// address to the site.

// dropped are elements removed with everything inside them.
var dropped = map[string]bool{
	"script": true, "noscript": true, "iframe": true, "frame": true, "frameset": true,
	"object": true, "embed": true, "applet": true, "template": true, "portal": true,
}

// void elements removed alone (they have no content).
var droppedVoid = map[string]bool{"base": true, "param": true}

// urlAttrs hold one URL; srcset holds a list.
var urlAttrs = map[string]bool{
	"href": true, "xlink:href": true, "src": true, "poster": true,
	"background": true, "cite": true, "data": true, "longdesc": true, "manifest": true,
}

// rewriter rewrites one page fetched from base.
type rewriter struct {
	base *url.URL
	// path is the proxy's own path ("/proxy"), which takes the target
	// as its url parameter.
	path string
}

// proxy is the proxied form of an absolute URL.
func (rw *rewriter) proxy(abs string) string {
	return rw.path + "?url=" + url.QueryEscape(abs)
}

// link returns the proxied form of ref, resolved against the page's base;
// "" for what must not be followed (javascript:, unknown schemes).
func (rw *rewriter) link(ref string) string {
	ref = strings.TrimSpace(ref)
	if ref == "" || strings.HasPrefix(ref, "#") {
		return ref
	}
	u, err := rw.base.Parse(ref)
	if err != nil {
		return ""
	}
	switch u.Scheme {
	case "http", "https":
		return rw.proxy(u.String())
	case "data":
		return ref // images inline; the policy allows data: images only
	}
	return ""
}

// cssURL matches url(...) and @import "..." in style sheets.
var cssURL = regexp.MustCompile(`(?i)url\(\s*(?:"([^"]*)"|'([^']*)'|([^)'"\s]*))\s*\)|@import\s+(?:"([^"]*)"|'([^']*)')`)

// css rewrites the URLs of a style sheet.
func (rw *rewriter) css(s string) string {
	return cssURL.ReplaceAllStringFunc(s, func(m string) string {
		sub := cssURL.FindStringSubmatch(m)
		ref := sub[1] + sub[2] + sub[3] + sub[4] + sub[5]
		l := rw.link(ref)
		if strings.HasPrefix(strings.ToLower(m), "@import") {
			return `@import "` + cssString(l) + `"`
		}
		return `url("` + cssString(l) + `")`
	})
}

// cssString escapes s for a double-quoted CSS string.
func cssString(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", "", "\r", "").Replace(s)
}

// html rewrites a page from r to w. banner is inserted at the start of
// the body.
func (rw *rewriter) html(w io.Writer, r io.Reader, banner string) error {
	z := html.NewTokenizer(r)
	var out bytes.Buffer
	skip := "" // the dropped element whose content is being skipped
	depth := 0
	inStyle := false
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			if z.Err() == io.EOF {
				break
			}
			return z.Err()
		}
		tok := z.Token()
		name := tok.Data
		if skip != "" {
			switch {
			case tt == html.StartTagToken && name == skip:
				depth++
			case tt == html.EndTagToken && name == skip:
				if depth--; depth == 0 {
					skip = ""
				}
			}
			continue
		}
		switch tt {
		case html.StartTagToken, html.SelfClosingTagToken:
			if dropped[name] {
				if tt == html.StartTagToken {
					skip, depth = name, 1
				}
				continue
			}
			if droppedVoid[name] {
				if name == "base" {
					rw.setBase(tok)
				}
				continue
			}
			if name == "meta" && hasAttr(tok, "http-equiv") {
				continue // refresh, set-cookie, content-security-policy: none apply here
			}
			if name == "link" && !safeLink(tok) {
				continue
			}
			var target string
			if name == "form" {
				tok.Attr, target = rw.form(tok.Attr)
			}
			tok.Attr = rw.attrs(tok.Attr)
			out.WriteString(tok.String())
			if target != "" {
				out.WriteString(`<input type="hidden" name="url" value="` + html.EscapeString(target) + `">`)
			}
			if name == "style" && tt == html.StartTagToken {
				inStyle = true
			}
			if name == "body" && tt == html.StartTagToken {
				out.WriteString(banner)
				banner = ""
			}
		case html.EndTagToken:
			if dropped[name] || droppedVoid[name] {
				continue
			}
			if name == "style" {
				inStyle = false
			}
			out.WriteString(tok.String())
		case html.TextToken:
			if inStyle {
				out.WriteString(rw.css(tok.Data)) // raw text: as the page has it
				continue
			}
			out.WriteString(tok.String())
		case html.DoctypeToken:
			out.WriteString(tok.String())
		case html.CommentToken:
			// Dropped: conditional comments can hold markup.
		}
		if out.Len() > 32<<10 {
			if _, err := w.Write(out.Bytes()); err != nil {
				return err
			}
			out.Reset()
		}
	}
	_, err := w.Write(out.Bytes())
	return err
}

// setBase takes a <base href> as the base of the page's relative URLs.
func (rw *rewriter) setBase(tok html.Token) {
	for _, a := range tok.Attr {
		if a.Key == "href" {
			if u, err := rw.base.Parse(strings.TrimSpace(a.Val)); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
				rw.base = u
			}
		}
	}
}

// attrs rewrites URL attributes and drops event handlers and what the
// rewriting breaks or could leak (integrity, ping).
func (rw *rewriter) attrs(in []html.Attribute) []html.Attribute {
	out := in[:0]
	for _, a := range in {
		k := strings.ToLower(a.Key)
		switch {
		case strings.HasPrefix(k, "on"), k == "integrity", k == "ping", k == "nonce", k == "crossorigin", k == "srcdoc", k == "formaction":
			continue
		case urlAttrs[k]:
			a.Val = rw.link(a.Val)
		case k == "srcset" || k == "imagesrcset":
			a.Val = rw.srcset(a.Val)
		case k == "style":
			a.Val = rw.css(a.Val)
		}
		out = append(out, a)
	}
	return out
}

// srcset rewrites each candidate of "URL [descriptor], …".
func (rw *rewriter) srcset(v string) string {
	parts := strings.Split(v, ",")
	for i, p := range parts {
		f := strings.Fields(p)
		if len(f) == 0 {
			continue
		}
		f[0] = rw.link(f[0])
		parts[i] = strings.Join(f, " ")
	}
	return strings.Join(parts, ", ")
}

// safeLink keeps <link> elements that load a style sheet or an icon; the
// others (preload, prefetch, preconnect, dns-prefetch, manifest…) would
// make the browser reach out by itself.
func safeLink(tok html.Token) bool {
	for _, a := range tok.Attr {
		if a.Key == "rel" {
			for _, rel := range strings.Fields(strings.ToLower(a.Val)) {
				if rel == "stylesheet" || rel == "icon" {
					return true
				}
			}
		}
	}
	return false
}

// form makes a form send GET to the proxy itself and returns the target
// its action named, which goes in a hidden url field: the proxy adds the
// form's other fields to the target's query. A form that cannot be
// followed gets no target, and the proxy refuses it.
func (rw *rewriter) form(attrs []html.Attribute) ([]html.Attribute, string) {
	target := rw.base.String()
	out := attrs[:0]
	for _, a := range attrs {
		switch strings.ToLower(a.Key) {
		case "method", "enctype":
		case "action":
			target = ""
			if u, err := rw.base.Parse(strings.TrimSpace(a.Val)); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
				target = u.String()
			}
		default:
			out = append(out, a)
		}
	}
	return append(out, html.Attribute{Key: "action", Val: rw.path}), target
}

func hasAttr(tok html.Token, key string) bool {
	for _, a := range tok.Attr {
		if strings.EqualFold(a.Key, key) {
			return true
		}
	}
	return false
}
