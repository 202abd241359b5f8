package webproxy

import (
	"fmt"
	"regexp"
	"strings"

	"golang.org/x/net/html"
)

// leak reads a rewritten page as a browser would (html.Parse, foreign
// content included) and names the first thing in it that could run a
// script or reach anywhere but the proxy: an element outside the
// allow-lists, an event handler, a URL not through the proxy (data: only
// for images), a <link> or <meta> that acts by itself, a style sheet URL
// outside the proxy. "" when there is none.
func leak(page string) string {
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		return "the output does not parse: " + err.Error()
	}
	return leakIn(doc)
}

func leakIn(n *html.Node) string {
	switch n.Type {
	case html.ElementNode:
		if why := leakElement(n); why != "" {
			return why
		}
	case html.TextNode:
		if p := n.Parent; p != nil && p.Data == "style" {
			if why := leakCSS(n.Data); why != "" {
				return "<style>: " + why
			}
		}
	case html.CommentNode:
		return "a comment survived"
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if why := leakIn(c); why != "" {
			return why
		}
	}
	return ""
}

func leakElement(n *html.Node) string {
	name := strings.ToLower(n.Data)
	switch n.Namespace {
	case "":
		if !htmlElements[name] {
			return fmt.Sprintf("<%s> survived", name)
		}
	case "svg":
		if !svgElements[name] {
			return fmt.Sprintf("<svg:%s> survived", name)
		}
	default:
		return fmt.Sprintf("<%s:%s> survived", n.Namespace, name)
	}
	image := name == "img" || name == "image" || name == "source" || name == "input" || name == "video" ||
		name == "body" || name == "table" || name == "td" || name == "th" || name == "tr"
	for _, a := range n.Attr {
		k := strings.ToLower(a.Key)
		switch {
		case strings.HasPrefix(k, "on"):
			return fmt.Sprintf("handler %s on <%s>", a.Key, name)
		case k == "formaction" || k == "ping" || k == "srcdoc" || k == "http-equiv" || k == "target" || k == "data" || k == "manifest":
			return fmt.Sprintf("%s on <%s>", a.Key, name)
		case k == "action":
			if a.Val != "/proxy" {
				return fmt.Sprintf("form action %q", a.Val)
			}
		case k == "method" && !strings.EqualFold(a.Val, "get"):
			return fmt.Sprintf("form method %q", a.Val)
		case k == "href" || k == "src" || k == "poster" || k == "background" || k == "cite" || k == "longdesc" || k == "usemap":
			if !proxied(a.Val, image) {
				return fmt.Sprintf("%s=%q on <%s> leads outside the proxy", a.Key, a.Val, name)
			}
		case k == "srcset" || k == "imagesrcset":
			for _, c := range strings.Split(a.Val, ", ") {
				if f := strings.Fields(c); len(f) > 0 && !proxied(f[0], image) {
					return fmt.Sprintf("%s candidate %q on <%s> leads outside the proxy", a.Key, f[0], name)
				}
			}
		case k == "style" || paintAttrs[k]:
			if why := leakCSS(a.Val); why != "" {
				return fmt.Sprintf("%s on <%s>: %s", a.Key, name, why)
			}
		case k == "rel" && name == "link":
			for _, r := range strings.Fields(strings.ToLower(a.Val)) {
				if r != "stylesheet" && r != "icon" {
					return fmt.Sprintf("<link rel=%s>", r)
				}
			}
		}
	}
	if name == "form" && n.Namespace == "" {
		if v, ok := attr(n, "action"); !ok || v != "/proxy" {
			return fmt.Sprintf("a form sending to %q", v)
		}
	}
	if name == "link" && n.Namespace == "" {
		if v, ok := attr(n, "rel"); !ok || v == "" {
			return "<link> without rel"
		}
	}
	return ""
}

// proxied: a URL that stays on the page, goes through the proxy, or is an
// inline image where images load.
func proxied(v string, image bool) bool {
	v = strings.TrimSpace(v)
	return v == "" || strings.HasPrefix(v, "#") || strings.HasPrefix(v, "/proxy?url=") ||
		image && strings.HasPrefix(strings.ToLower(v), "data:image/")
}

var (
	cssURLs    = regexp.MustCompile(`(?i)(?:^|[^a-z0-9_\-#@\x{80}-\x{10FFFF}])url\(\s*(["']?)([^"')]*)`)
	cssImports = regexp.MustCompile(`(?i)@import\s*(url\(\s*)?(["']?)([^"')\s;]*)`)
	// A string not opened right after url( or @import is text, not an
	// address (content:"url(x)").
	cssText    = regexp.MustCompile(`(?i)(url\(\s*|@import\s*)?("(?:[^"\\\n]|\\.)*("|$|\n)|'(?:[^'\\\n]|\\.)*('|$|\n))`)
	cssEscapes = regexp.MustCompile(`\\(?:[0-9a-fA-F]{1,6}[ \t\n\r\f]?|[^\n\r\f0-9a-fA-F])`)
)

// leakCSS names a URL of a style sheet that leads outside the proxy.
// Escapes of letters and digits are read first, as a browser reads them
// in names; others stay escaped: an escaped parenthesis, quote or space
// is part of a name, which is no url(.
func leakCSS(s string) string {
	s = cssEscapes.ReplaceAllStringFunc(s, func(e string) string {
		d := cssUnescape(e)
		if len(d) == 1 && !isHex(d[0]) && !('g' <= d[0]|0x20 && d[0]|0x20 <= 'z') {
			return e
		}
		return d
	})
	s = cssText.ReplaceAllStringFunc(s, func(m string) string {
		if sub := cssText.FindStringSubmatch(m); sub[1] != "" {
			return m
		}
		return `""`
	})
	for _, m := range cssURLs.FindAllStringSubmatch(s, -1) {
		if m[1] != `"` || !proxied(m[2], true) {
			return fmt.Sprintf("url(%s%s) leads outside the proxy", m[1], m[2])
		}
	}
	for _, m := range cssImports.FindAllStringSubmatch(s, -1) {
		if (m[1] != "" || m[2] != "") && (m[2] != `"` || !proxied(m[3], false)) {
			return fmt.Sprintf("%s leads outside the proxy", m[0])
		}
	}
	return ""
}
