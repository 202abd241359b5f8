package site

import (
	"errors"
	"net/http"

	"veil/internal/apitypes"
	"veil/internal/controlplane"
	"veil/internal/store"
	"veil/internal/web"
)

// supportPageView is what support.html shows.
type supportPageView struct {
	// Error is the message id of what was wrong with the form.
	Error string
	// LoggedIn offers to attach the ticket to the visitor's account.
	LoggedIn bool
	Created  *apitypes.TicketCreated
	Ticket   *apitypes.TicketView
	Token    string
}

func (s *Site) supportPage(w http.ResponseWriter, r *http.Request) {
	acc, _ := s.pageAccount(r)
	s.page(w, r, "support.html", web.Page{Title: "title.support", Data: supportPageView{LoggedIn: acc != nil}})
}

func (s *Site) supportSubmit(w http.ResponseWriter, r *http.Request) {
	var accountID int64
	acc, _ := s.pageAccount(r)
	if acc != nil && r.PostForm.Get("attach") == "1" {
		accountID = acc.ID
	}
	req := apitypes.TicketRequest{Subject: r.PostForm.Get("subject"), Message: r.PostForm.Get("message"), Email: r.PostForm.Get("email")}
	lang, prefix := web.Language(r)
	out, err := s.API.CreateTicket(r.Context(), accountID, req, s.API.PublicURL(r)+prefix, lang)
	if errors.Is(err, controlplane.ErrTicket) || errors.Is(err, controlplane.ErrBadEmail) {
		msg := "support.error.ticket"
		if errors.Is(err, controlplane.ErrBadEmail) {
			msg = "support.error.email"
		}
		s.page(w, r, "support.html", web.Page{Title: "title.support", Data: supportPageView{Error: msg, LoggedIn: acc != nil}, Status: http.StatusBadRequest})
		return
	}
	if err != nil {
		s.pageFail(w, r, "creating ticket", err)
		return
	}
	http.Redirect(w, r, prefix+"/support/ticket/"+out.Token, http.StatusSeeOther)
}

func (s *Site) ticketPage(w http.ResponseWriter, r *http.Request) {
	t, err := s.API.Ticket(r.Context(), r.PathValue("token"))
	if errors.Is(err, store.ErrNotFound) {
		noTicket(w, r)
		return
	}
	if err != nil {
		s.pageFail(w, r, "reading ticket", err)
		return
	}
	s.page(w, r, "support.html", web.Page{Title: "title.support", Data: supportPageView{Ticket: t, Token: r.PathValue("token")}})
}

func (s *Site) ticketPageReply(w http.ResponseWriter, r *http.Request) {
	// A reply without a message, or too long, is dropped: the page shows
	// the ticket as it was.
	err := s.API.Reply(r.Context(), r.PathValue("token"), r.PostForm.Get("message"))
	switch {
	case errors.Is(err, store.ErrNotFound):
		noTicket(w, r)
		return
	case err != nil && !errors.Is(err, controlplane.ErrReply):
		s.pageFail(w, r, "adding ticket message", err)
		return
	}
	_, prefix := web.Language(r)
	http.Redirect(w, r, prefix+"/support/ticket/"+r.PathValue("token"), http.StatusSeeOther)
}

func noTicket(w http.ResponseWriter, r *http.Request) {
	web.Render(w, r, "notice.html", web.Page{Title: "title.no_ticket", Status: http.StatusNotFound,
		Data: "notice.no_ticket"})
}
