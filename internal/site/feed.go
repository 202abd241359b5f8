package site

import (
	"encoding/xml"
	"net/http"
	"strings"
	"time"

	"veil/internal/i18n"
	"veil/internal/web"
)

// The blog's Atom feed (RFC 4287), one per language.
type atomFeed struct {
	XMLName xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	Lang    string      `xml:"xml:lang,attr"`
	ID      string      `xml:"id"`
	Title   string      `xml:"title"`
	Updated string      `xml:"updated"`
	Links   []atomLink  `xml:"link"`
	Author  atomAuthor  `xml:"author"`
	Entries []atomEntry `xml:"entry"`
}

type atomLink struct {
	Rel  string `xml:"rel,attr,omitempty"`
	Href string `xml:"href,attr"`
}

type atomAuthor struct {
	Name string `xml:"name"`
}

type atomEntry struct {
	ID      string      `xml:"id"`
	Title   string      `xml:"title"`
	Updated string      `xml:"updated"`
	Link    atomLink    `xml:"link"`
	Summary string      `xml:"summary"`
	Content atomContent `xml:"content"`
}

type atomContent struct {
	Type string `xml:"type,attr"`
	Body string `xml:",chardata"`
}

func (s *Site) feed(w http.ResponseWriter, r *http.Request) {
	lang, prefix := web.Language(r)
	base := strings.TrimSuffix(s.PublicURL, "/") + prefix
	l := i18n.For(lang)
	author := s.Operator.Name
	if author == "" {
		author = "Veil"
	}
	f := atomFeed{
		Lang: l.Lang.HTML, ID: base + "/blog", Title: "Veil · " + l.T("title.blog"),
		Links:  []atomLink{{Rel: "self", Href: base + "/blog/feed.atom"}, {Href: base + "/blog"}},
		Author: atomAuthor{Name: author},
	}
	posts := s.prose.list("blog", lang)
	updated := time.Unix(0, 0).UTC()
	for _, d := range posts {
		if d.Date.After(updated) {
			updated = d.Date
		}
		u := base + "/blog/" + d.Slug
		f.Entries = append(f.Entries, atomEntry{
			ID: u, Title: d.Title, Updated: d.Date.Format(time.RFC3339), Link: atomLink{Href: u},
			Summary: d.Summary, Content: atomContent{Type: "html", Body: string(d.Body)},
		})
	}
	f.Updated = updated.Format(time.RFC3339)
	w.Header().Set("Content-Type", "application/atom+xml; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write([]byte(xml.Header))
	xml.NewEncoder(w).Encode(f)
}
