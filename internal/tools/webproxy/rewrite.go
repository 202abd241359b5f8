package webproxy

import (
	"io"
	"net/url"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
	htmlcharset "golang.org/x/net/html/charset"
)

// The page rewriting works on the tree a browser builds from the page
// (html.Parse: foreign content, misnesting and all) and keeps only what
// the allow-lists below name; everything else goes. Every URL kept goes
// back through the proxy. The page is then written anew (html.Render),
// so the browser reads markup the proxy made, not the site's.
//
// Two rules keep the tree the browser builds from that markup the one
// that was checked: an HTML element inside SVG (or SVG inside anything
// but an <svg> element) is dropped with what it holds, and MathML goes
// whole. Those are the places where the HTML and foreign parsers disagree
// on what a <style> holds.
//
// The proxy's Content-Security-Policy (sandbox, no script, nothing from
// anywhere but the proxy) is the backstop: what this misses fails to load
// instead of leaking the visitor's address to the site.

// htmlElements are the HTML elements kept. Elements neither kept nor in
// droppedElements go, but their content stays (an unknown custom element
// still shows its text).
var htmlElements = set(
	"html", "head", "body", "title", "meta", "link", "style",
	"a", "abbr", "address", "article", "aside", "b", "bdi", "bdo", "big", "blockquote", "br",
	"caption", "center", "cite", "code", "col", "colgroup", "data", "dd", "del", "details", "dfn",
	"dialog", "div", "dl", "dt", "em", "figcaption", "figure", "font", "footer",
	"h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "hr", "i", "ins", "kbd", "li",
	"main", "mark", "menu", "nav", "nobr", "ol", "p", "pre", "q", "rp", "rt", "ruby",
	"s", "samp", "search", "section", "small", "span", "strike", "strong", "sub", "summary", "sup",
	"table", "tbody", "td", "tfoot", "th", "thead", "time", "tr", "tt", "u", "ul", "var", "wbr",
	"form", "fieldset", "legend", "label", "input", "button", "select", "option", "optgroup",
	"textarea", "output", "progress", "meter", "datalist",
	"img", "picture", "source", "audio", "video", "track", "map", "area",
)

// droppedElements go with everything inside them: what runs, embeds or
// frames, and what a browser without scripts would show as markup.
var droppedElements = set(
	"script", "noscript", "iframe", "frame", "frameset", "object", "embed", "applet", "param",
	"template", "portal", "noembed", "noframes", "xmp", "plaintext", "base", "slot", "fencedframe",
)

// svgElements are the SVG elements kept; any other goes with its content
// (script, foreignObject, use, feImage, and the animations, which can set
// an href).
var svgElements = set(
	"svg", "g", "defs", "symbol", "title", "desc", "path", "rect", "circle", "ellipse", "line",
	"polyline", "polygon", "text", "tspan", "textpath", "a", "image", "style",
	"lineargradient", "radialgradient", "stop", "pattern", "clippath", "mask", "marker", "filter",
	"feblend", "fecolormatrix", "fecomponenttransfer", "fecomposite", "feconvolvematrix",
	"fediffuselighting", "fedisplacementmap", "fedistantlight", "fedropshadow", "feflood",
	"fefunca", "fefuncb", "fefuncg", "fefuncr", "fegaussianblur", "femerge", "femergenode",
	"femorphology", "feoffset", "fepointlight", "fespecularlighting", "fespotlight", "fetile",
	"feturbulence",
)

// htmlAttrs are the HTML attributes kept (besides aria-* and data-*).
var htmlAttrs = set(
	"id", "class", "title", "lang", "dir", "hidden", "role", "tabindex", "translate", "accesskey",
	"width", "height", "align", "valign", "bgcolor", "border", "cellpadding", "cellspacing",
	"color", "face", "size", "text", "link", "vlink", "alink", "nowrap", "clear", "frame", "rules",
	"colspan", "rowspan", "headers", "scope", "span", "abbr", "axis", "char", "charoff",
	"alt", "name", "type", "value", "placeholder", "checked", "disabled", "readonly", "required",
	"selected", "multiple", "maxlength", "minlength", "min", "max", "step", "pattern",
	"rows", "cols", "wrap", "for", "label", "open", "start", "reversed", "datetime",
	"sizes", "media", "controls", "loop", "muted", "kind", "srclang", "default", "shape",
	"coords", "high", "low", "optimum", "autocomplete", "list", "hreflang", "rel", "download",
	"loading", "decoding", "charset", "content", "novalidate", "form", "inputmode", "spellcheck",
	"contenteditable", "draggable", "start", "compact", "hspace", "vspace",
)

// svgAttrs are the SVG attributes kept, in lower case.
var svgAttrs = set(
	"id", "class", "lang", "role", "tabindex", "focusable", "xmlns", "version",
	"x", "y", "x1", "x2", "y1", "y2", "cx", "cy", "r", "rx", "ry", "fx", "fy", "fr", "d", "points",
	"width", "height", "viewbox", "preserveaspectratio", "transform", "pathlength",
	"fill", "fill-opacity", "fill-rule", "stroke", "stroke-width", "stroke-linecap",
	"stroke-linejoin", "stroke-dasharray", "stroke-dashoffset", "stroke-miterlimit",
	"stroke-opacity", "opacity", "clip-rule", "clip-path", "mask", "filter", "color", "display",
	"visibility", "overflow", "vector-effect", "pointer-events", "shape-rendering",
	"text-rendering", "image-rendering", "color-interpolation", "color-interpolation-filters",
	"paint-order", "mix-blend-mode", "isolation",
	"marker-start", "marker-mid", "marker-end", "markerwidth", "markerheight", "markerunits",
	"refx", "refy", "orient",
	"font-family", "font-size", "font-weight", "font-style", "font-variant", "text-anchor",
	"dominant-baseline", "alignment-baseline", "baseline-shift", "letter-spacing",
	"word-spacing", "text-decoration", "writing-mode", "text-orientation", "dx", "dy", "rotate",
	"textlength", "lengthadjust", "startoffset", "method", "spacing", "side",
	"offset", "stop-color", "stop-opacity", "gradientunits", "gradienttransform", "spreadmethod",
	"patternunits", "patterncontentunits", "patterntransform", "clippathunits", "maskunits",
	"maskcontentunits", "filterunits", "primitiveunits",
	"in", "in2", "result", "stddeviation", "values", "mode", "operator", "k1", "k2", "k3", "k4",
	"flood-color", "flood-opacity", "lighting-color", "kernelmatrix", "order", "divisor", "bias",
	"targetx", "targety", "edgemode", "preservealpha", "surfacescale", "diffuseconstant",
	"specularconstant", "specularexponent", "kernelunitlength", "azimuth", "elevation",
	"z", "pointsatx", "pointsaty", "pointsatz", "limitingconeangle", "scale",
	"xchannelselector", "ychannelselector", "basefrequency", "numoctaves", "seed", "stitchtiles",
	"tablevalues", "slope", "intercept", "amplitude", "exponent", "radius",
	"media",
)

// urlAttrs hold one URL, in either namespace.
var urlAttrs = set("href", "src", "poster", "background", "cite")

// paintAttrs are SVG attributes whose value may hold url( ).
var paintAttrs = set("fill", "stroke", "clip-path", "mask", "filter", "marker-start", "marker-mid", "marker-end")

// imageHolders are the elements whose URLs may be inline images.
var imageHolders = set("img", "source", "input", "image", "video", "body", "table", "td", "th", "tr")

// metaNames are the <meta name> kept; the others (referrer, and any
// http-equiv) change how the page is handled.
var metaNames = set("description", "keywords", "author", "viewport", "color-scheme", "theme-color", "generator")

// unreadable stands in for a page the parser refuses (nested deeper than
// it goes).
const unreadable = `<!DOCTYPE html><html><body><p>This page is nested too deeply to be shown through the proxy.</p></body></html>`

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
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
// "" for what must not be followed (javascript:, unknown schemes, and
// data: but for images where image is set).
func (rw *rewriter) link(ref string, image bool) string {
	ref = clean(ref)
	if ref == "" {
		return ""
	}
	if ref[0] == '#' {
		return "#" + queryEscaper.Replace(ref[1:])
	}
	if strings.HasPrefix(strings.ToLower(ref), "data:") {
		if image && strings.HasPrefix(strings.ToLower(ref), "data:image/") {
			return ref
		}
		return ""
	}
	u := rw.resolve(ref)
	if u == nil {
		return ""
	}
	frag := u.EscapedFragment()
	u.Fragment, u.RawFragment = "", ""
	if frag != "" {
		return rw.proxy(u.String()) + "#" + frag
	}
	return rw.proxy(u.String())
}

// clean reads a URL as a browser does: leading and trailing controls and
// spaces stripped, tabs and line breaks removed.
func clean(ref string) string {
	ref = strings.TrimFunc(ref, func(r rune) bool { return r <= ' ' })
	return strings.NewReplacer("\t", "", "\n", "", "\r", "").Replace(ref)
}

// resolve is the http or https URL ref names from the page, nil for any
// other; a backslash before the query counts as a slash and the query is
// encoded, as browsers do.
func (rw *rewriter) resolve(ref string) *url.URL {
	ref = clean(ref)
	if i := strings.IndexAny(ref, "?#"); i >= 0 {
		ref = strings.ReplaceAll(ref[:i], `\`, "/") + ref[i:]
	} else {
		ref = strings.ReplaceAll(ref, `\`, "/")
	}
	u, err := rw.base.Parse(ref)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil
	}
	u.RawQuery = queryEscaper.Replace(u.RawQuery)
	return u
}

// queryEscaper encodes what a browser encodes in a query.
var queryEscaper = strings.NewReplacer(" ", "%20", `"`, "%22", "<", "%3C", ">", "%3E", "`", "%60", "'", "%27")

// html rewrites the page read from r, of the given Content-Type, to w as
// UTF-8. banner is inserted at the start of the body.
func (rw *rewriter) html(w io.Writer, r io.Reader, contentType, banner string) error {
	// One encoding for the proxy and the browser: a page the two decoded
	// differently would not be the page that was checked.
	r, err := htmlcharset.NewReader(r, contentType)
	if err != nil {
		return err
	}
	doc, err := html.Parse(r)
	if err != nil {
		_, err = io.WriteString(w, unreadable)
		return err
	}
	rw.setBase(doc)
	rw.clean(doc)
	if body := find(doc, "body"); body != nil && banner != "" {
		nodes, err := html.ParseFragment(strings.NewReader(banner), body)
		if err != nil {
			return err
		}
		first := body.FirstChild
		for _, n := range nodes {
			body.InsertBefore(n, first)
		}
	}
	return html.Render(w, doc)
}

// setBase takes the first <base href> as the base of the page's relative
// URLs, wherever it stands, as browsers do.
func (rw *rewriter) setBase(doc *html.Node) {
	var walk func(n *html.Node) bool
	walk = func(n *html.Node) bool {
		if n.Type == html.ElementNode && n.Namespace == "" && n.Data == "base" {
			if href, ok := attr(n, "href"); ok {
				if u := rw.resolve(href); u != nil {
					rw.base = u
				}
				return true
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if walk(c) {
				return true
			}
		}
		return false
	}
	walk(doc)
}

// clean rewrites n's children in place.
func (rw *rewriter) clean(n *html.Node) {
	for c := n.FirstChild; c != nil; {
		next := c.NextSibling
		switch c.Type {
		case html.ElementNode:
			switch verdict(n, c) {
			case drop:
				n.RemoveChild(c)
			case unwrap:
				rw.clean(c)
				for gc := c.FirstChild; gc != nil; gc = c.FirstChild {
					c.RemoveChild(gc)
					n.InsertBefore(gc, c)
				}
				n.RemoveChild(c)
			case keep:
				rw.element(c)
				rw.clean(c)
			}
		case html.TextNode:
			if n.Type == html.ElementNode && n.Data == "style" {
				c.Data = rw.css(c.Data)
				if n.Namespace == "" && strings.Contains(strings.ToLower(c.Data), "</style") {
					c.Data = ""
				}
			}
		case html.DoctypeNode:
		default: // comments: conditional comments can hold markup
			n.RemoveChild(c)
		}
		c = next
	}
}

type action int

const (
	drop action = iota
	unwrap
	keep
)

// verdict decides what becomes of the element c under parent.
func verdict(parent, c *html.Node) action {
	switch c.Namespace {
	case "":
		if parent.Namespace != "" || droppedElements[c.Data] {
			return drop
		}
		switch c.Data {
		case "link":
			if rel, _ := attr(c, "rel"); linkRel(rel) == "" {
				return drop
			}
		case "meta":
			name, _ := attr(c, "name")
			if _, equiv := attr(c, "http-equiv"); equiv || !metaNames[strings.ToLower(name)] {
				return drop
			}
		}
		if htmlElements[c.Data] {
			return keep
		}
		return unwrap
	case "svg":
		name := strings.ToLower(c.Data)
		if parent.Namespace == "" && name != "svg" || !svgElements[name] {
			return drop
		}
		return keep
	}
	return drop // MathML
}

// element rewrites a kept element's attributes: URLs through the proxy,
// style sheets rewritten, the rest kept only if allowed.
func (rw *rewriter) element(n *html.Node) {
	var target string
	if n.Data == "form" && n.Namespace == "" {
		target = rw.formTarget(n)
	}
	image := imageHolders[n.Data]
	out := n.Attr[:0]
	for _, a := range n.Attr {
		k := strings.ToLower(a.Key)
		switch {
		case a.Namespace == "xlink" && k == "href" && n.Namespace == "svg":
			if a.Val = rw.link(a.Val, image); a.Val == "" {
				continue
			}
		case a.Namespace == "xmlns" && k == "xlink" && n.Namespace == "svg":
		case a.Namespace != "":
			continue
		case urlAttrs[k]:
			if a.Val = rw.link(a.Val, image); a.Val == "" {
				continue // not followed: no link rather than one to this page
			}
		case k == "srcset" && n.Namespace == "":
			a.Val = rw.srcset(a.Val, image)
		case k == "usemap" && n.Namespace == "":
			if !strings.HasPrefix(a.Val, "#") {
				continue
			}
		case k == "style":
			a.Val = rw.css(a.Val)
		case k == "rel" && n.Data == "link":
			a.Val = linkRel(a.Val)
		case n.Namespace == "svg":
			if !svgAttrs[k] {
				continue
			}
			if paintAttrs[k] {
				a.Val = rw.css(a.Val)
			}
		case !htmlAttrs[k] && !strings.HasPrefix(k, "aria-") && !strings.HasPrefix(k, "data-"):
			continue
		}
		out = append(out, a)
	}
	n.Attr = out
	if n.Data == "form" && n.Namespace == "" {
		rw.form(n, target)
	}
}

// formTarget is where the form n sends its fields: its action, or the
// page itself; "" for one that cannot be followed.
func (rw *rewriter) formTarget(n *html.Node) string {
	action, ok := attr(n, "action")
	if !ok {
		return rw.base.String()
	}
	if u := rw.resolve(action); u != nil {
		return u.String()
	}
	return ""
}

// form makes a form send GET to the proxy itself (its method, enctype and
// action are not among the attributes kept), with the target in a hidden
// url field: the proxy adds the form's other fields to the target's
// query. A form without a target is refused by the proxy.
func (rw *rewriter) form(n *html.Node, target string) {
	n.Attr = append(n.Attr, html.Attribute{Key: "action", Val: rw.path})
	if target != "" {
		n.InsertBefore(&html.Node{Type: html.ElementNode, Data: "input", DataAtom: atom.Input, Attr: []html.Attribute{
			{Key: "type", Val: "hidden"}, {Key: "name", Val: "url"}, {Key: "value", Val: target},
		}}, n.FirstChild)
	}
}

// srcset rewrites each candidate of "URL [descriptors], …", splitting as
// browsers do: a URL runs to white space (commas inside are its own, as
// in data: URLs), descriptors to the next comma outside parentheses.
func (rw *rewriter) srcset(v string, image bool) string {
	var out []string
	const space = " \t\n\r\f"
	for {
		v = strings.TrimLeft(v, space+",")
		if v == "" {
			return strings.Join(out, ", ")
		}
		end := strings.IndexAny(v, space)
		if end < 0 {
			end = len(v)
		}
		u, desc := v[:end], ""
		v = v[end:]
		if trimmed := strings.TrimRight(u, ","); trimmed != u {
			u = trimmed
		} else {
			depth, i := 0, 0
			for ; i < len(v); i++ {
				if v[i] == '(' {
					depth++
				} else if v[i] == ')' && depth > 0 {
					depth--
				} else if v[i] == ',' && depth == 0 {
					break
				}
			}
			desc, v = strings.TrimSpace(v[:i]), v[i:]
		}
		c := rw.link(u, image)
		if c == "" {
			continue
		}
		if desc != "" {
			c += " " + desc
		}
		out = append(out, c)
	}
}

// linkRel keeps of a <link rel> the kinds that load a style sheet or an
// icon; the others (preload, prefetch, preconnect, dns-prefetch,
// manifest…) make the browser reach out by itself.
func linkRel(rel string) string {
	var kept []string
	for _, r := range strings.Fields(strings.ToLower(rel)) {
		if r == "stylesheet" || r == "icon" {
			kept = append(kept, r)
		}
	}
	return strings.Join(kept, " ")
}

// attr is the value of n's attribute key, in no namespace.
func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Namespace == "" && strings.EqualFold(a.Key, key) {
			return a.Val, true
		}
	}
	return "", false
}

// find is the first HTML element named name in n's tree.
func find(n *html.Node, name string) *html.Node {
	if n.Type == html.ElementNode && n.Namespace == "" && n.Data == name {
		return n
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if f := find(c, name); f != nil {
			return f
		}
	}
	return nil
}
