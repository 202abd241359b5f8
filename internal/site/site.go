// Package site holds the provider's own pages: what Veil is, who runs
// it, the cookies it sets. Each page is a template of templates/ in the
// shared layout (veil/internal/web) whose text comes from the catalogues
// (veil/internal/i18n); Register lists every route of the package.
package site

import (
	"embed"
	"html/template"
	"net/http"
	"time"

	"veil/internal/web"
)

//go:embed templates/*.html
var templateFS embed.FS

var pages = map[string]*template.Template{
	"cookies.html":  web.MustParse(templateFS, "templates/cookies.html"),
	"contacts.html": web.MustParse(templateFS, "templates/contacts.html"),
}

// Operator is who runs the service, as the contacts page and the privacy
// policy name it.
type Operator struct {
	Name    string
	Address string
	Email   string
}

// Site serves the provider's pages.
type Site struct {
	Operator Operator
	// SessionTTL is how long the sign-in cookie lives, for the cookie
	// notice.
	SessionTTL time.Duration
}

// Register mounts the site's pages on mux. This is the list of its
// routes.
func (s *Site) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /cookies", s.cookies)
	mux.HandleFunc("GET /contacts", s.contacts)
}

// Cookie is one cookie the site sets, as the notice describes it.
type Cookie struct {
	Name string
	// Purpose and Lifetime are message ids.
	Purpose, Lifetime string
	// Hours fills the lifetime's count, when it has one.
	Hours int
}

// Cookies are every cookie Veil sets (the account pages' sign-in and the
// forms' guard, in veil/internal/controlplane); the notice lists these.
func (s *Site) Cookies() []Cookie {
	return []Cookie{
		{Name: "veil_session", Purpose: "cookies.session.purpose", Lifetime: "cookies.session.lifetime", Hours: int(s.SessionTTL.Round(time.Hour) / time.Hour)},
		{Name: "veil_csrf", Purpose: "cookies.csrf.purpose", Lifetime: "cookies.csrf.lifetime"},
	}
}

func (s *Site) cookies(w http.ResponseWriter, r *http.Request) {
	web.Execute(w, r, pages["cookies.html"], web.Page{Title: "title.cookies", Data: s.Cookies()})
}

func (s *Site) contacts(w http.ResponseWriter, r *http.Request) {
	web.Execute(w, r, pages["contacts.html"], web.Page{Title: "title.contacts", Data: s.Operator})
}
