// Package site is the provider's web pages: what Veil is, who runs it,
// the cookies it sets, and the pages over the account (sign-up, the
// account page and its devices, support, the privacy policy, the shop).
// The pages change nothing themselves: they call the control plane's
// exported operations (veil/internal/controlplane), whose JSON API
// serves the same. Each page is a template in the shared layout
// (veil/internal/web) whose text comes from the catalogues
// (veil/internal/i18n); Register (routes.go) lists every route of the
// site.
package site

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"time"

	"veil/internal/controlplane"
	"veil/internal/i18n"
	"veil/internal/privacy"
	"veil/internal/visitor"
	"veil/internal/web"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed content
var contentFS embed.FS

var pages = map[string]*template.Template{}

func init() {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, n := range names {
		pages[path.Base(n)] = web.MustParse(templateFS, n)
	}
}

// Operator is who runs the service, as the contacts page and the privacy
// policy name it.
type Operator struct {
	Name    string
	Address string
	Email   string
}

// Config is what the site is built from.
type Config struct {
	Operator Operator
	// SessionTTL is how long the sign-in cookie lives, for the cookie
	// notice.
	SessionTTL time.Duration
	// ProseDir, if set, holds the operator's own Markdown pages, which
	// replace the built-in ones of the same name and language (see
	// loadProse).
	ProseDir string
	// PublicURL is the site's address, for the feed's links.
	PublicURL string
	// DownloadsDir holds the release files /download offers and their
	// SHA256SUMS; empty: none (download.go).
	DownloadsDir string
	// API is the control plane whose operations the account's pages
	// call; only the provider's own pages (vpn, help, blog, legal) serve
	// without it.
	API *controlplane.Server
	// Visitors tells who sent a request, for the throttles and the
	// cookies' Secure flag; nil: the TCP peer.
	Visitors *visitor.Resolver
	// Logger; nil: discard.
	Logger *slog.Logger
}

// Site serves the provider's pages.
type Site struct {
	Config
	prose prose
	log   *slog.Logger
}

// New reads the site's pages; an operator's page that does not parse
// stops start-up with one line naming it.
func New(cfg Config) (*Site, error) {
	p, err := loadProse(mustSub(contentFS, "content"), cfg.ProseDir)
	if err != nil {
		return nil, err
	}
	for _, slug := range []string{"terms", "refund"} {
		if d, _ := p.doc("", slug, i18n.Default); d == nil {
			return nil, fmt.Errorf("the site has no English %s page", slug)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Site{Config: cfg, prose: p, log: log}, nil
}

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

// Cookie is one cookie the site sets, as the notice describes it.
type Cookie struct {
	Name string
	// Purpose and Lifetime are message ids.
	Purpose, Lifetime string
	// Hours fills the lifetime's count, when it has one.
	Hours int
}

// Cookies are every cookie Veil sets (the account pages' sign-in,
// sessionCookie, and the forms' guard, csrfCookie); the notice lists
// these.
func (s *Site) Cookies() []Cookie {
	return []Cookie{
		{Name: sessionCookie, Purpose: "cookies.session.purpose", Lifetime: "cookies.session.lifetime", Hours: int(s.SessionTTL.Round(time.Hour) / time.Hour)},
		{Name: csrfCookie, Purpose: "cookies.csrf.purpose", Lifetime: "cookies.csrf.lifetime"},
	}
}

func (s *Site) cookies(w http.ResponseWriter, r *http.Request) {
	web.Execute(w, r, pages["cookies.html"], web.Page{Title: "title.cookies", Data: s.Cookies()})
}

func (s *Site) contacts(w http.ResponseWriter, r *http.Request) {
	web.Execute(w, r, pages["contacts.html"], web.Page{Title: "title.contacts", Data: s.Operator})
}

// appGroup is one app's part of the apps' privacy policy.
type appGroup struct {
	App  privacy.App
	Sent []privacy.Transmission
}

// appsPrivacy renders the apps' privacy policy from privacy.Sent, as
// /privacy is rendered from the inventory.
func (s *Site) appsPrivacy(w http.ResponseWriter, r *http.Request) {
	var groups []appGroup
	for _, t := range privacy.Sent {
		if len(groups) == 0 || groups[len(groups)-1].App != t.App {
			groups = append(groups, appGroup{App: t.App})
		}
		g := &groups[len(groups)-1]
		g.Sent = append(g.Sent, t)
	}
	web.Execute(w, r, pages["apps.html"], web.Page{Title: "title.apps_privacy", Data: groups})
}

func (s *Site) vpn(w http.ResponseWriter, r *http.Request) {
	web.Execute(w, r, pages["vpn.html"], web.Page{Title: "title.vpn"})
}

// docView is what doc.html shows: a page, and whether it is in English
// for want of a translation.
type docView struct {
	Doc      *Doc
	FellBack bool
	// Section and its index's title id, for the way back; empty for a
	// single page.
	Section, SectionTitle string
}

func (s *Site) showDoc(w http.ResponseWriter, r *http.Request, section, sectionTitle, slug string) {
	lang, _ := web.Language(r)
	d, fellBack := s.prose.doc(section, slug, lang)
	if d == nil {
		web.NotFound(w, r)
		return
	}
	web.Execute(w, r, pages["doc.html"], web.Page{Title: d.Title, Data: docView{Doc: d, FellBack: fellBack, Section: section, SectionTitle: sectionTitle}})
}

func (s *Site) single(slug string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { s.showDoc(w, r, "", "", slug) }
}

func (s *Site) entry(section string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.showDoc(w, r, section, "title."+section, r.PathValue("slug"))
	}
}

// indexView is what index.html shows: a section's pages.
type indexView struct {
	Section string
	Docs    []*Doc
}

func (s *Site) index(section, title string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		lang, _ := web.Language(r)
		web.Execute(w, r, pages["index.html"], web.Page{Title: title, Data: indexView{Section: section, Docs: s.prose.list(section, lang)}})
	}
}
