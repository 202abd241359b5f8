// Package web holds the site's shared layout: the base HTML template with
// its navigation, the stylesheet and scripts (embedded), and Render, which
// every page of the site goes through so that all pages look alike and
// carry the same security headers.
//
// A page is a template that defines "content" (and optionally "head" and
// "scripts"). Pages of this package's templates directory are rendered by
// name:
//
//	web.Render(w, r, "myip.html", web.Page{Title: "title.myip", Data: report})
//
// Other packages parse their own page with the layout once, at start:
//
//	tmpl := web.MustParse(myFS, "account.html")
//	web.Execute(w, r, tmpl, web.Page{Title: "title.account", Data: acct})
package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"veil/internal/apitypes"
	"veil/internal/i18n"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Page is what the layout needs besides the page's own data.
type Page struct {
	// Title goes in <title> and the page heading.
	Title string
	// Data is the page's own data, as "{{.Data}}" in its template.
	Data any
	// Credits are licence attributions shown in the footer, such as
	// "IP Geolocation by DB-IP".
	Credits []Credit
	// ConnectSrc and ImgSrc are extra origins the page's script may reach
	// (Content-Security-Policy), such as the dual-stack hosts or the DNS
	// leak zone ("http://*.leak.example").
	ConnectSrc []string
	ImgSrc     []string
	// Status is the HTTP status of the page; 0 is 200.
	Status int
	// CSRF is the token the page's forms carry ({{template "csrf" $}}
	// in a form); empty: the page posts no form.
	CSRF string
}

// Credit is one attribution line with its link.
type Credit struct {
	Text string
	URL  string
}

// NavItem is one link of the site navigation.
type NavItem struct {
	Path string
	// Label is the link's message id in the catalogues (internal/i18n).
	Label string
}

// Nav is the site's main navigation, in order.
var Nav = []NavItem{
	{"/vpn", "nav.vpn"},
	{"/servers", "nav.servers"},
	{"/pricing", "nav.pricing"},
	{"/download", "nav.download"},
	{"/help", "nav.help"},
	{"/account", "nav.account"},
}

// Tools are the privacy tools, a second row of the navigation.
var Tools = []NavItem{
	{"/", "nav.myip"},
	{"/dnsleak", "nav.dnsleak"},
	{"/speedtest", "nav.speedtest"},
	{"/ping", "nav.ping"},
	{"/whois", "nav.whois"},
	{"/proxy", "nav.proxy"},
}

// Footer are the links at the foot of every page.
var Footer = []NavItem{
	{"/support", "nav.support"},
	{"/blog", "nav.blog"},
	{"/affiliate", "nav.affiliate"},
	{"/terms", "nav.terms"},
	{"/refund", "nav.refund"},
	{"/privacy", "nav.privacy"},
	{"/apps-privacy", "nav.apps_privacy"},
	{"/cookies", "nav.cookies"},
	{"/contacts", "nav.contacts"},
}

// view is what the base template sees: the page, and the visitor's
// language, whose messages the templates take with {{$.T "id"}},
// {{$.N "id" count}}, {{$.Code "id" "Name" value}} and, for text with
// links and on-screen labels, {{$.Rich "id" "Name" value}}.
type view struct {
	Page
	*i18n.Localizer
	Path               string
	Nav, Tools, Footer []NavItem
	// prefix is what the site's own links start with: the language
	// prefix the visitor came by ("/de"), or "" when the language came
	// from Accept-Language.
	prefix string
}

var base = template.Must(template.New("base").Funcs(Funcs).ParseFS(templateFS, "templates/base.html"))

// Funcs are the template functions every page may use.
var Funcs = template.FuncMap{
	"join": strings.Join,
	"inc":  func(i int) int { return i + 1 },
	// coord formats a latitude or longitude to about 10 m.
	"coord": func(v *float64) string {
		if v == nil {
			return "unknown"
		}
		return strconv.FormatFloat(*v, 'f', 4, 64)
	},
}

// Parse returns the layout joined with the page templates matched by
// patterns in fsys.
func Parse(fsys fs.FS, patterns ...string) (*template.Template, error) {
	t, err := base.Clone()
	if err != nil {
		return nil, err
	}
	return t.ParseFS(fsys, patterns...)
}

// MustParse is Parse for templates known at build time; it panics on
// error.
func MustParse(fsys fs.FS, patterns ...string) *template.Template {
	return template.Must(Parse(fsys, patterns...))
}

var pages = map[string]*template.Template{}

func init() {
	entries, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		name := strings.TrimPrefix(e, "templates/")
		if name != "base.html" {
			pages[name] = MustParse(templateFS, e)
		}
	}
}

// Render writes the page template name from this package's templates.
func Render(w http.ResponseWriter, r *http.Request, name string, p Page) {
	t, ok := pages[name]
	if !ok {
		http.Error(w, "page not found", http.StatusInternalServerError)
		return
	}
	Execute(w, r, t, p)
}

// Execute writes the page t (from Parse) with the layout. The page is
// rendered into memory first so that a template error gives a clean 500.
func Execute(w http.ResponseWriter, r *http.Request, t *template.Template, p Page) {
	var buf bytes.Buffer
	lang, prefix := Language(r)
	v := view{Page: p, Localizer: i18n.For(lang), Path: r.URL.Path, Nav: Nav, Tools: Tools, Footer: Footer, prefix: prefix}
	if err := t.ExecuteTemplate(&buf, "base", v); err != nil {
		http.Error(w, "the page could not be shown", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	SecurityHeaders(h, p.ConnectSrc, p.ImgSrc)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Language", v.Lang.HTML)
	if prefix == "" {
		h.Add("Vary", "Accept-Language")
	}
	if p.Status != 0 {
		w.WriteHeader(p.Status)
	}
	w.Write(buf.Bytes())
}

// SecurityHeaders sets the headers every page carries: a strict content
// security policy (scripts only from /static/), no referrer, no framing.
func SecurityHeaders(h http.Header, connectSrc, imgSrc []string) {
	csp := "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
	csp += "; connect-src 'self'"
	for _, s := range connectSrc {
		csp += " " + s
	}
	csp += "; img-src 'self' data:"
	for _, s := range imgSrc {
		csp += " " + s
	}
	h.Set("Content-Security-Policy", csp)
	// same-origin, not no-referrer: under no-referrer a browser sends
	// "Origin: null" with the site's own form posts, which the forms'
	// guard must refuse. Other sites still get no referrer.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
}

// Register mounts the static files at /static/.
func Register(mux *http.ServeMux) {
	mux.Handle("GET /static/", Static())
	// Browsers ask for /favicon.ico whatever the page links: the icon
	// answers there too, rather than a 404 in the console.
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		b, err := staticFS.ReadFile("static/icon.svg")
		if err != nil {
			NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "image/svg+xml")
		w.Header().Set("Cache-Control", "public, max-age=86400")
		w.Write(b)
	})
}

// Static serves the embedded static files; mount it at /static/. Only
// files are served: a directory (the listing http.FileServer would show)
// or a name no file has is NotFound.
func Static() http.Handler {
	fsys, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err)
	}
	files := http.StripPrefix("/static/", http.FileServerFS(fsys))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, "/static/")
		if fi, err := fs.Stat(fsys, name); !ok || !utf8.ValidString(name) || !fs.ValidPath(name) || err != nil || !fi.Mode().IsRegular() {
			NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
}

// NotFound answers a request for no page: the site's page for a browser
// (one that accepts text/html), the API's JSON error under /api/, and
// plain text for other clients such as curl.
func NotFound(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	switch {
	case r.URL.Path == "/api" || strings.HasPrefix(r.URL.Path, "/api/"):
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(apitypes.Error{Error: "no such API endpoint; see the API reference in the README"})
	case strings.Contains(r.Header.Get("Accept"), "text/html"):
		Render(w, r, "notfound.html", Page{Title: "title.not_found", Status: http.StatusNotFound})
	default:
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "not found\n")
	}
}

// WithNotFound serves mux, answering a request that matches none of its
// routes with NotFound instead of Go's bare "404 page not found". A
// route's own 404 (no such device, no such ticket) and the mux's 405 for
// a known path with another method pass through.
func WithNotFound(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(&notFoundWriter{ResponseWriter: w, r: r}, r)
	})
}

// notFoundWriter turns the mux's own 404 into NotFound and drops the
// mux's text.
type notFoundWriter struct {
	http.ResponseWriter
	r        *http.Request
	replaced bool
}

func (n *notFoundWriter) WriteHeader(code int) {
	if code == http.StatusNotFound {
		n.replaced = true
		for k := range n.ResponseWriter.Header() {
			n.ResponseWriter.Header().Del(k)
		}
		NotFound(n.ResponseWriter, n.r)
		return
	}
	n.ResponseWriter.WriteHeader(code)
}

func (n *notFoundWriter) Write(b []byte) (int, error) {
	if n.replaced {
		return len(b), nil
	}
	return n.ResponseWriter.Write(b)
}
