package site

import (
	"net/http"
	"strconv"

	"veil/internal/privacy"
	"veil/internal/store"
	"veil/internal/web"
)

// policyView is what privacy.html shows.
type policyView struct {
	Doc     *privacy.Document
	Version *store.PolicyVersion // nil: none published yet
}

// privacyPage is the policy in the visitor's language
// (controlplane.Server.Policy says which prose that is).
func (s *Site) privacyPage(w http.ResponseWriter, r *http.Request) {
	lang, _ := web.Language(r)
	doc, version, err := s.API.Policy(r.Context(), lang)
	if err != nil {
		s.pageFail(w, r, "reading policy", err)
		return
	}
	v := policyView{Doc: doc, Version: version}
	web.Render(w, r, "privacy.html", web.Page{Title: "title.privacy", Data: v})
}

// versionsView is what privacy_versions.html shows.
type versionsView struct {
	Versions []store.PolicyVersion
	From, To int64
	Diff     []privacy.Line
}

// versionsPage compares published versions. They are kept as they were
// published, in English (i18n.Default): the page says so in the
// visitor's language.
func (s *Site) versionsPage(w http.ResponseWriter, r *http.Request) {
	vs, err := s.API.PolicyVersions(r.Context())
	if err != nil {
		s.pageFail(w, r, "reading policy versions", err)
		return
	}
	v := versionsView{Versions: vs}
	byID := map[int64]string{}
	for _, p := range vs {
		byID[p.ID] = p.Body
	}
	v.To, _ = strconv.ParseInt(r.URL.Query().Get("to"), 10, 64)
	v.From, _ = strconv.ParseInt(r.URL.Query().Get("from"), 10, 64)
	if _, ok := byID[v.To]; !ok && len(vs) > 0 {
		v.To = vs[len(vs)-1].ID
	}
	if _, ok := byID[v.From]; !ok {
		// The version before To.
		v.From = 0
		for _, p := range vs {
			if p.ID < v.To {
				v.From = p.ID
			}
		}
	}
	if v.To != 0 {
		v.Diff = privacy.Diff(byID[v.From], byID[v.To])
	}
	web.Render(w, r, "privacy_versions.html", web.Page{Title: "title.privacy_versions", Data: v})
}
