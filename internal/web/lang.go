package web

import (
	"context"
	"fmt"
	"net/http"

	"veil/internal/i18n"
)

type langKey struct{}

type langChoice struct {
	code   string
	prefix string
}

// Localize serves next in the visitor's language: the one its path
// starts with (/de/ping is /ping in German; the prefix is taken off
// before next sees the path), else the best match of Accept-Language.
// Pages rendered by Execute then speak that language and keep the
// prefix in their links.
func Localize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := langChoice{code: i18n.Match(r.Header.Get("Accept-Language"))}
		if code, rest, ok := i18n.FromPath(r.URL.Path); ok {
			c = langChoice{code: code, prefix: "/" + code}
			r2 := r.Clone(r.Context())
			r2.URL.Path, r2.URL.RawPath = rest, ""
			r = r2
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), langKey{}, c)))
	})
}

// Language is the visitor's language code for r and the prefix its links
// keep ("" when the language came from Accept-Language, or when r did
// not pass through Localize).
func Language(r *http.Request) (code, prefix string) {
	if c, ok := r.Context().Value(langKey{}).(langChoice); ok {
		return c.code, c.prefix
	}
	return i18n.Match(r.Header.Get("Accept-Language")), ""
}

// Href is path, one of the site's own, in the visitor's language: with
// the prefix the visitor came by.
func (v view) Href(path string) string {
	if v.prefix == "" {
		return path
	}
	if path == "/" {
		return v.prefix
	}
	return v.prefix + path
}

// Alternate is this page in one language, for the switcher and for
// <link rel="alternate" hreflang>.
type Alternate struct {
	i18n.Lang
	// Href is the page in that language; Canonical the address search
	// engines are given for it (English without a prefix).
	Href, Canonical string
	Current         bool
}

// Alternates is the page in every language of the site.
func (v view) Alternates() []Alternate {
	out := make([]Alternate, len(i18n.Langs))
	for i, l := range i18n.Langs {
		p := "/" + l.Code + v.Path
		if v.Path == "/" {
			p = "/" + l.Code
		}
		canon := p
		if l.Code == i18n.Default {
			canon = v.Path
		}
		out[i] = Alternate{Lang: l, Href: p, Canonical: canon, Current: l.Code == v.Lang.Code}
	}
	return out
}

// linkList is what the "links" template sees: links, and the page they
// are drawn on.
type linkList struct {
	Items []NavItem
	View  view
}

// Links pairs items with the page, for the "links" template.
func (v view) Links(items []NavItem) linkList { return linkList{Items: items, View: v} }

// Text is a page's message as the visitor reads it: an error in the
// visitor's language where it is an i18n.Error (a handler's notice, a
// refusal), a message id's text in that language, anything else as it
// is.
func (v view) Text(x any) string {
	switch x := x.(type) {
	case nil:
		return ""
	case error:
		return v.Err(x)
	case string:
		if i18n.Has(x) {
			return v.T(x)
		}
	}
	return fmt.Sprint(x)
}
