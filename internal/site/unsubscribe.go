package site

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"veil/internal/controlplane"
	"veil/internal/i18n"
	"veil/internal/web"
)

// unsubscribePage confirms a mailed unsubscribe link with a button, which
// posts to unsubscribe.
func unsubscribePage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	web.Render(w, r, "unsubscribe.html", web.Page{Title: "title.unsubscribe", Data: map[string]string{"A": q.Get("a"), "T": q.Get("t")}})
}

// unsubscribe is the RFC 8058 one-click endpoint (and the page's form):
// a POST withdraws marketing consent, with no further step.
func (s *Site) unsubscribe(w http.ResponseWriter, r *http.Request) {
	lang, _ := web.Language(r)
	l := i18n.For(lang)
	err := controlplane.ErrBadLink
	if id, perr := strconv.ParseInt(r.URL.Query().Get("a"), 10, 64); perr == nil {
		err = s.API.Unsubscribe(r.Context(), id, r.URL.Query().Get("t"))
	}
	switch {
	case errors.Is(err, controlplane.ErrBadLink):
		http.Error(w, l.T("unsubscribe.invalid"), http.StatusBadRequest)
		return
	case err != nil:
		s.pageFail(w, r, "unsubscribing", err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintln(w, l.T("unsubscribe.done"))
}
