package site

import (
	"errors"
	"net/http"
	"time"

	"veil/internal/controlplane"
	"veil/internal/store"
	"veil/internal/web"
)

// A lost access code: the account page's form mails a one-time link
// (controlplane.Server.RecoverCode), which leads here to a new code.

// recoverCode is the account page's form for a lost access code; it
// answers every well-formed request alike, as the API does.
func (s *Site) recoverCode(w http.ResponseWriter, r *http.Request) {
	lang, prefix := web.Language(r)
	if ok, _ := s.API.RecoverAllowed(s.Visitors.Key(r)); !ok {
		toAccount(w, r, "?m=throttled")
		return
	}
	email, err := controlplane.CleanEmail(r.PostForm.Get("email"))
	if err != nil || email == "" {
		toAccount(w, r, "?m=bademail")
		return
	}
	if err := s.API.RecoverCode(r.Context(), email, lang, prefix); err != nil {
		s.pageFail(w, r, "recovering access code", err)
		return
	}
	toAccount(w, r, "?m=recover")
}

// recoverView is what recover.html shows: the confirmation form, then
// the new code.
type recoverView struct {
	Token string
	Code  string
}

// recoverLinkPage is where the mailed link leads: a confirmation form
// only, since mail scanners fetch links and must not spend them.
func (s *Site) recoverLinkPage(w http.ResponseWriter, r *http.Request) {
	tok := r.PathValue("token")
	ok, err := s.API.RecoveryLinkValid(r.Context(), tok)
	if err != nil {
		s.pageFail(w, r, "reading recovery link", err)
		return
	}
	if !ok {
		recoverLinkGone(w, r)
		return
	}
	s.page(w, r, "recover.html", web.Page{Title: "title.new_code", Data: recoverView{Token: tok}})
}

// recoverLinkUse spends the link: a new access code, shown once, and
// every session of the account ended.
func (s *Site) recoverLinkUse(w http.ResponseWriter, r *http.Request) {
	code, err := s.API.UseRecoveryLink(r.Context(), r.PathValue("token"))
	if errors.Is(err, store.ErrNotFound) {
		recoverLinkGone(w, r)
		return
	}
	if err != nil {
		s.pageFail(w, r, "recovering access code", err)
		return
	}
	// This browser's session, if any, has ended with the others.
	s.setSessionCookie(w, r, "", time.Unix(1, 0))
	s.page(w, r, "recover.html", web.Page{Title: "title.new_code", Data: recoverView{Code: code}})
}

func recoverLinkGone(w http.ResponseWriter, r *http.Request) {
	web.Render(w, r, "notice.html", web.Page{Title: "title.link_expired", Status: http.StatusNotFound,
		Data: "notice.link_expired"})
}
