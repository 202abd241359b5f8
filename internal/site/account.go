package site

import (
	"context"
	"errors"
	"net/http"
	"time"

	"veil/internal/account"
	"veil/internal/apitypes"
	"veil/internal/i18n"
	"veil/internal/store"
	"veil/internal/web"
)

// sessionCookie holds the site's session token: HttpOnly,
// SameSite=Strict, Secure over HTTPS, for the whole site (path /) so that
// the support form can attach a ticket to the account.
const sessionCookie = "veil_session"

// registerPages adds the privacy engine's web pages: the policy and its
// versions, the account page (rights by access code) and support.
func (s *Server) registerPages(mux *http.ServeMux) {
	mux.HandleFunc("GET /privacy", s.privacyPage)
	mux.HandleFunc("GET /privacy/versions", s.versionsPage)
	mux.HandleFunc("GET /account", s.accountPage)
	mux.HandleFunc("POST /account/login", s.pageForm(s.accountLogin))
	mux.HandleFunc("POST /account/logout", s.pageForm(s.accountLogout))
	mux.HandleFunc("POST /account/email", s.pageForm(s.withPageAccount(s.accountEmail)))
	mux.HandleFunc("POST /account/restrict", s.pageForm(s.withPageAccount(s.accountFlag("restricted"))))
	mux.HandleFunc("POST /account/marketing", s.pageForm(s.withPageAccount(s.accountFlag("marketing"))))
	mux.HandleFunc("POST /account/erase", s.pageForm(s.withPageAccount(s.accountErase)))
	mux.HandleFunc("GET /account/export", s.withPageAccount(s.exportAccount))
	s.registerDevicePages(mux)
	mux.HandleFunc("GET /support", s.supportPage)
	mux.HandleFunc("POST /support", s.pageForm(s.supportSubmit))
	mux.HandleFunc("GET /support/ticket/{token}", s.ticketPage)
	mux.HandleFunc("POST /support/ticket/{token}", s.pageForm(s.ticketPageReply))
}

// pageFail answers a page's internal error in the visitor's language,
// without details, and logs what failed without the request.
func (s *Server) pageFail(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log.Error(what, "err", err)
	code, _ := web.Language(r)
	http.Error(w, i18n.For(code).T("page.internal_error"), http.StatusInternalServerError)
}

// pageForm guards form posts (csrf.go): the site's own Origin and the
// form token, on a parsed form.
func (s *Server) pageForm(h http.HandlerFunc) http.HandlerFunc {
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

// withPageAccount admits requests whose session cookie is live, and sends
// the others to the login form.
func (s *Server) withPageAccount(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		acc, hash := s.pageAccount(r)
		if acc == nil {
			toAccount(w, r, "?m=login")
			return
		}
		h(w, r.WithContext(withAccountCtx(r.Context(), acc, hash)))
	}
}

func (s *Server) pageAccount(r *http.Request) (*store.Account, []byte) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		return nil, nil
	}
	hash := s.cfg.Hasher.Token(c.Value)
	sess, err := s.cfg.Store.SessionByTokenHash(r.Context(), hash, s.cfg.Now())
	if err != nil {
		return nil, nil
	}
	acc, err := s.cfg.Store.AccountByID(r.Context(), sess.AccountID)
	if err != nil {
		return nil, nil
	}
	return acc, hash
}

func (s *Server) setSessionCookie(w http.ResponseWriter, r *http.Request, tok string, exp time.Time) {
	secure := s.secureRequest(r)
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: tok, Path: "/", Expires: exp,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure,
	})
	// The cookie was once scoped to /account; an old one there would
	// shadow this one on the account page.
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Path: "/account", Expires: time.Unix(1, 0),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure,
	})
}

// accountPageView is what account.html shows.
type accountPageView struct {
	Message string
	Account *accountInfo
}

type accountInfo struct {
	Email            string
	Plan             string
	PaidUntil        string
	TrialUntil       string
	Active           bool
	MarketingConsent bool
	Restricted       bool
	Devices          int
	Tickets          int
	PaymentReference string
	CheckoutURL      string
	// PayLinks are the products' Stripe Payment Links for this account.
	PayLinks []apitypes.PayLink
	// DeviceList and Servers feed the device manager (devicepage.go).
	DeviceList []deviceRow
	MaxDevices int
	// VoucherExample shows the form a voucher code takes.
	VoucherExample string
	Servers        []serverOption
}

// toAccount sends the visitor back to the account page, in the language
// they came by, with what follows "/account" (a ?m= note, a #fragment).
func toAccount(w http.ResponseWriter, r *http.Request, rest string) {
	_, prefix := web.Language(r)
	http.Redirect(w, r, prefix+"/account"+rest, http.StatusSeeOther)
}

func dateOrEmpty(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.DateOnly)
}

func (s *Server) accountPage(w http.ResponseWriter, r *http.Request) {
	// ?m= names the note to show after an action: the catalogue
	// message account.m.NAME, and nothing else.
	var v accountPageView
	if id := "account.m." + r.URL.Query().Get("m"); i18n.Has(id) {
		code, _ := web.Language(r)
		v.Message = i18n.For(code).T(id)
	}
	if acc, _ := s.pageAccount(r); acc != nil {
		devs, err := s.cfg.Store.Devices(r.Context(), acc.ID)
		if err != nil {
			s.pageFail(w, r, "reading devices", err)
			return
		}
		ts, err := s.cfg.Store.AccountTickets(r.Context(), acc.ID)
		if err != nil {
			s.pageFail(w, r, "reading tickets", err)
			return
		}
		v.Account = &accountInfo{
			Email: acc.Email, Plan: acc.Plan, PaidUntil: dateOrEmpty(acc.PaidUntil), TrialUntil: dateOrEmpty(acc.TrialUntil),
			Active: acc.Active(s.cfg.Now()), MarketingConsent: acc.MarketingConsent, Restricted: acc.Restricted,
			Devices: len(devs), Tickets: len(ts), PaymentReference: s.cfg.Hasher.PaymentRef(acc.ID),
			CheckoutURL: s.checkoutURL(acc.ID), PayLinks: s.payLinks(acc.ID),
			DeviceList: s.deviceRows(devs), MaxDevices: s.maxDevices(acc),
			VoucherExample: account.VoucherExample,
		}
		if v.Account.Servers, err = s.serverOptions(r); err != nil {
			s.pageFail(w, r, "listing gateways", err)
			return
		}
	}
	s.page(w, r, "account.html", web.Page{Title: "title.account", Data: v})
}

func (s *Server) accountLogin(w http.ResponseWriter, r *http.Request) {
	sess, _, err := s.login(r.Context(), s.cfg.Visitors.Key(r), r.PostForm.Get("access_code"))
	switch {
	case errors.Is(err, errThrottled):
		toAccount(w, r, "?m=throttled")
	case errors.Is(err, errBadCode):
		toAccount(w, r, "?m=bad")
	case err != nil:
		s.pageFail(w, r, "logging in", err)
	default:
		s.setSessionCookie(w, r, sess.Token, sess.ExpiresAt)
		toAccount(w, r, "")
	}
}

func (s *Server) accountLogout(w http.ResponseWriter, r *http.Request) {
	if _, hash := s.pageAccount(r); hash != nil {
		if err := s.cfg.Store.DeleteSession(r.Context(), hash); err != nil {
			s.pageFail(w, r, "deleting session", err)
			return
		}
	}
	s.setSessionCookie(w, r, "", time.Unix(1, 0))
	toAccount(w, r, "?m=out")
}

func (s *Server) accountEmail(w http.ResponseWriter, r *http.Request) {
	email, err := CleanEmail(r.PostForm.Get("email"))
	if err != nil {
		toAccount(w, r, "?m=bademail")
		return
	}
	u := store.AccountUpdate{Email: &email}
	if email == "" {
		no := false
		u.MarketingConsent = &no
	}
	if err := s.cfg.Store.UpdateAccount(r.Context(), accountFrom(r).ID, u); err != nil {
		s.pageFail(w, r, "updating account", err)
		return
	}
	toAccount(w, r, "?m=email")
}

// accountFlag sets the restriction or the marketing consent from the
// form's "on" field.
func (s *Server) accountFlag(which string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		on := r.PostForm.Get("on") == "1"
		acc := accountFrom(r)
		var u store.AccountUpdate
		switch which {
		case "restricted":
			u.Restricted = &on
		default:
			if on && acc.Email == "" {
				on = false // no address to send to
			}
			u.MarketingConsent = &on
		}
		if err := s.cfg.Store.UpdateAccount(r.Context(), acc.ID, u); err != nil {
			s.pageFail(w, r, "updating account", err)
			return
		}
		toAccount(w, r, "?m="+which)
	}
}

func (s *Server) accountErase(w http.ResponseWriter, r *http.Request) {
	if r.PostForm.Get("confirm") != "yes" {
		toAccount(w, r, "?m=confirm")
		return
	}
	if err := s.cfg.Store.DeleteAccount(r.Context(), accountFrom(r).ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.pageFail(w, r, "erasing account", err)
		return
	}
	s.setSessionCookie(w, r, "", time.Unix(1, 0))
	toAccount(w, r, "?m=erased")
}

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

func (s *Server) supportPage(w http.ResponseWriter, r *http.Request) {
	acc, _ := s.pageAccount(r)
	s.page(w, r, "support.html", web.Page{Title: "title.support", Data: supportPageView{LoggedIn: acc != nil}})
}

func (s *Server) supportSubmit(w http.ResponseWriter, r *http.Request) {
	var accountID int64
	acc, _ := s.pageAccount(r)
	if acc != nil && r.PostForm.Get("attach") == "1" {
		accountID = acc.ID
	}
	req := apitypes.TicketRequest{Subject: r.PostForm.Get("subject"), Message: r.PostForm.Get("message"), Email: r.PostForm.Get("email")}
	lang, prefix := web.Language(r)
	out, err := s.CreateTicket(r.Context(), accountID, req, s.publicURL(r)+prefix, lang)
	if errors.Is(err, errTicket) || errors.Is(err, ErrBadEmail) {
		msg := "support.error.ticket"
		if errors.Is(err, ErrBadEmail) {
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

func (s *Server) ticketPage(w http.ResponseWriter, r *http.Request) {
	t, err := s.ticketByToken(r)
	if errors.Is(err, store.ErrNotFound) {
		noTicket(w, r)
		return
	}
	if err != nil {
		s.pageFail(w, r, "reading ticket", err)
		return
	}
	v := ticketView(t, true)
	s.page(w, r, "support.html", web.Page{Title: "title.support", Data: supportPageView{Ticket: &v, Token: r.PathValue("token")}})
}

func (s *Server) ticketPageReply(w http.ResponseWriter, r *http.Request) {
	t, err := s.ticketByToken(r)
	if errors.Is(err, store.ErrNotFound) {
		noTicket(w, r)
		return
	}
	if err != nil {
		s.pageFail(w, r, "reading ticket", err)
		return
	}
	_, msg, err := cleanTicket("-", r.PostForm.Get("message"))
	if err == nil {
		err = s.cfg.Store.AddTicketMessage(r.Context(), t.ID, store.TicketMessage{Body: msg, CreatedAt: s.cfg.Now()}, store.TicketOpen)
		if err != nil {
			s.pageFail(w, r, "adding ticket message", err)
			return
		}
	}
	_, prefix := web.Language(r)
	http.Redirect(w, r, prefix+"/support/ticket/"+r.PathValue("token"), http.StatusSeeOther)
}

func noTicket(w http.ResponseWriter, r *http.Request) {
	web.Render(w, r, "notice.html", web.Page{Title: "title.no_ticket", Status: http.StatusNotFound,
		Data: "notice.no_ticket"})
}

func (s *Server) unsubscribePage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	web.Render(w, r, "unsubscribe.html", web.Page{Title: "title.unsubscribe", Data: map[string]string{"A": q.Get("a"), "T": q.Get("t")}})
}

// withAccountCtx stores the account and session hash as withAccount does,
// so the API's handlers serve the page's requests too.
func withAccountCtx(ctx context.Context, acc *store.Account, hash []byte) context.Context {
	ctx = context.WithValue(ctx, ctxAccount, acc)
	return context.WithValue(ctx, ctxSession, hash)
}
