package site

import (
	"crypto/hmac"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"

	"veil/internal/account"
	"veil/internal/web"
)

// The site's forms are guarded twice against cross-site posts, beside
// the session cookie's SameSite=Strict: the browser's Origin must be the
// site's own, and the form must carry a token bound to a cookie that only
// the site can set (signed double submit). SameSite alone lets a login
// form be posted from a sandboxed cross-site frame (Origin: null).
const (
	// csrfCookie holds a random value the form token is derived from.
	// Lax, so that arriving by a mailed link keeps the browser's value.
	csrfCookie = "veil_csrf"
	// csrfField is the form field holding the token.
	csrfField = "csrf"
)

// csrfToken returns the form token for the visitor, setting the cookie
// it is derived from when the browser has none.
func (s *Site) csrfToken(w http.ResponseWriter, r *http.Request) string {
	v := csrfCookieValue(r)
	if v == "" {
		var err error
		if v, err = account.NewToken(); err != nil {
			return "" // the form then fails the check and says to reload
		}
		http.SetCookie(w, &http.Cookie{
			Name: csrfCookie, Value: v, Path: "/", HttpOnly: true,
			SameSite: http.SameSiteLaxMode, Secure: s.secureRequest(r),
		})
	}
	return s.csrfFor(v)
}

func (s *Site) csrfFor(cookie string) string {
	return base64.RawURLEncoding.EncodeToString(s.API.Sign("csrf:" + cookie))
}

func csrfCookieValue(r *http.Request) string {
	c, err := r.Cookie(csrfCookie)
	if err != nil || len(c.Value) < 32 || len(c.Value) > 64 {
		return ""
	}
	return c.Value
}

// checkCSRF reports whether the parsed form r carries the token of the
// visitor's cookie.
func (s *Site) checkCSRF(r *http.Request) bool {
	v := csrfCookieValue(r)
	return v != "" && hmac.Equal([]byte(r.PostForm.Get(csrfField)), []byte(s.csrfFor(v)))
}

// sameOrigin reports whether the request's Origin is the site: the host
// the request was sent to, or the configured public URL. A missing
// Origin, "null" (a sandboxed frame, a data: page) and any other site
// are refused; every browser sends Origin with a form post.
func (s *Site) sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return false
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || u.Path != "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	if pub, err := url.Parse(s.API.PublicURL(nil)); err == nil && pub.Host != "" {
		return strings.EqualFold(u.Scheme, pub.Scheme) && strings.EqualFold(u.Host, pub.Host)
	}
	return false
}

// pageForm guards form posts : the site's own Origin and the
// form token, on a parsed form.
func (s *Site) pageForm(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.sameOrigin(r) {
			refuseForm(w, r)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "malformed form", http.StatusBadRequest)
			return
		}
		if !s.checkCSRF(r) {
			refuseForm(w, r)
			return
		}
		h(w, r)
	}
}

// maxBody bounds a form's body, as the API bounds its JSON.
const maxBody = 64 << 10

// refuseForm answers a form the guard refused, in the site's layout.
func refuseForm(w http.ResponseWriter, r *http.Request) {
	web.Render(w, r, "notice.html", web.Page{Title: "title.form_refused", Data: "notice.form_refused", Status: http.StatusForbidden})
}

// secureRequest reports whether the visitor's connection is HTTPS, so
// that cookies get the Secure flag.
func (s *Site) secureRequest(r *http.Request) bool {
	return s.Visitors.Secure(r)
}

// page renders a page of the site that holds forms, with their token.
func (s *Site) page(w http.ResponseWriter, r *http.Request, name string, p web.Page) {
	p.CSRF = s.csrfToken(w, r)
	web.Render(w, r, name, p)
}
