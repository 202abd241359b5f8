package site

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"veil/internal/account"
	"veil/internal/apitypes"
	"veil/internal/billing"
	"veil/internal/controlplane"
	"veil/internal/i18n"
	"veil/internal/store"
	"veil/internal/web"
)

// The account page: logging in by access code, the account's settings,
// its rights (export, erasure), vouchers, a lost code's recovery, and the
// device manager (devices.go). Every change is an operation of the
// control plane's.

// sessionCookie holds the site's session token: HttpOnly,
// SameSite=Strict, Secure over HTTPS, for the whole site (path /) so that
// the support form can attach a ticket to the account.
const sessionCookie = "veil_session"

// pageFail answers a page's internal error in the visitor's language,
// without details, and logs what failed without the request.
func (s *Site) pageFail(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log.Error(what, "err", err)
	code, _ := web.Language(r)
	http.Error(w, i18n.For(code).T("page.internal_error"), http.StatusInternalServerError)
}

// withPageAccount admits requests whose session cookie is live, and sends
// the others to the login form.
func (s *Site) withPageAccount(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		acc, _ := s.pageAccount(r)
		if acc == nil {
			toAccount(w, r, "?m=login")
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), accountKey{}, acc)))
	}
}

// accountKey holds, in a request's context, the account withPageAccount
// admitted.
type accountKey struct{}

// accountFrom is the account withPageAccount admitted.
func accountFrom(r *http.Request) *store.Account {
	return r.Context().Value(accountKey{}).(*store.Account)
}

// pageAccount is the account the session cookie opens and the
// session's hash, or nil.
func (s *Site) pageAccount(r *http.Request) (*store.Account, []byte) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, nil
	}
	acc, hash, err := s.API.Session(r.Context(), c.Value)
	if err != nil {
		return nil, nil
	}
	return acc, hash
}

func (s *Site) setSessionCookie(w http.ResponseWriter, r *http.Request, tok string, exp time.Time) {
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
	// DeviceList and Servers feed the device manager (devices.go).
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

// date is t's day, or "" for none.
func date(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.DateOnly)
}

func (s *Site) accountPage(w http.ResponseWriter, r *http.Request) {
	// ?m= names the note to show after an action: the catalogue
	// message account.m.NAME, and nothing else.
	var v accountPageView
	if id := "account.m." + r.URL.Query().Get("m"); i18n.Has(id) {
		code, _ := web.Language(r)
		v.Message = i18n.For(code).T(id)
	}
	if acc, _ := s.pageAccount(r); acc != nil {
		code, _ := web.Language(r)
		s.API.KeepLang(r.Context(), acc, code) // the account's mail follows the page's language
		a, err := s.API.Account(r.Context(), acc)
		if err != nil {
			s.pageFail(w, r, "reading account", err)
			return
		}
		devs, err := s.API.Devices(r.Context(), acc.ID)
		if err != nil {
			s.pageFail(w, r, "reading devices", err)
			return
		}
		tickets, err := s.API.TicketCount(r.Context(), acc.ID)
		if err != nil {
			s.pageFail(w, r, "reading tickets", err)
			return
		}
		v.Account = &accountInfo{
			Email: a.Email, Plan: a.Plan, PaidUntil: date(a.PaidUntil), TrialUntil: date(a.TrialUntil),
			Active: a.Active, MarketingConsent: a.MarketingConsent, Restricted: a.Restricted,
			Devices: len(devs), Tickets: tickets, PaymentReference: a.PaymentReference,
			CheckoutURL: a.CheckoutURL, PayLinks: a.PayLinks,
			DeviceList: s.deviceRows(devs), MaxDevices: a.MaxDevices,
			VoucherExample: account.VoucherExample,
		}
		if v.Account.Servers, err = s.serverOptions(r); err != nil {
			s.pageFail(w, r, "listing gateways", err)
			return
		}
	}
	s.page(w, r, "account.html", web.Page{Title: "title.account", Data: v})
}

func (s *Site) accountLogin(w http.ResponseWriter, r *http.Request) {
	sess, _, err := s.API.Login(r.Context(), s.Visitors.Key(r), r.PostForm.Get("access_code"))
	switch {
	case errors.Is(err, controlplane.ErrThrottled):
		toAccount(w, r, "?m=throttled")
	case errors.Is(err, controlplane.ErrBadCode):
		toAccount(w, r, "?m=bad")
	case err != nil:
		s.pageFail(w, r, "logging in", err)
	default:
		s.setSessionCookie(w, r, sess.Token, sess.ExpiresAt)
		toAccount(w, r, "")
	}
}

func (s *Site) accountLogout(w http.ResponseWriter, r *http.Request) {
	if _, hash := s.pageAccount(r); hash != nil {
		if err := s.API.EndSession(r.Context(), hash); err != nil {
			s.pageFail(w, r, "deleting session", err)
			return
		}
	}
	s.setSessionCookie(w, r, "", time.Unix(1, 0))
	toAccount(w, r, "?m=out")
}

func (s *Site) accountEmail(w http.ResponseWriter, r *http.Request) {
	err := s.API.SetEmail(r.Context(), accountFrom(r).ID, r.PostForm.Get("email"))
	switch {
	case errors.Is(err, controlplane.ErrBadEmail):
		toAccount(w, r, "?m=bademail")
	case err != nil:
		s.pageFail(w, r, "updating account", err)
	default:
		toAccount(w, r, "?m=email")
	}
}

// accountFlag sets the restriction or the marketing consent from the
// form's "on" field.
func (s *Site) accountFlag(which string) http.HandlerFunc {
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
		if err := s.API.UpdateAccount(r.Context(), acc.ID, u); err != nil {
			s.pageFail(w, r, "updating account", err)
			return
		}
		toAccount(w, r, "?m="+which)
	}
}

func (s *Site) accountErase(w http.ResponseWriter, r *http.Request) {
	if r.PostForm.Get("confirm") != "yes" {
		toAccount(w, r, "?m=confirm")
		return
	}
	if err := s.API.DeleteAccount(r.Context(), accountFrom(r).ID); err != nil {
		s.pageFail(w, r, "erasing account", err)
		return
	}
	s.setSessionCookie(w, r, "", time.Unix(1, 0))
	toAccount(w, r, "?m=erased")
}

// accountExport is the right of access from the account page: the API's
// export, as a file to save.
func (s *Site) accountExport(w http.ResponseWriter, r *http.Request) {
	exp, err := s.API.Export(r.Context(), accountFrom(r).ID)
	if err != nil {
		s.pageFail(w, r, "exporting account", err)
		return
	}
	w.Header().Set("Content-Disposition", `attachment; filename="veil-account-export.json"`)
	controlplane.WriteJSON(w, http.StatusOK, exp)
}

func (s *Site) accountRedeem(w http.ResponseWriter, r *http.Request) {
	days, err := s.API.RedeemVoucher(r.Context(), s.Visitors.Key(r), accountFrom(r).ID, r.PostForm.Get("voucher"))
	switch {
	case errors.Is(err, controlplane.ErrVoucherThrottled):
		toAccount(w, r, "?m=throttled")
	case errors.Is(err, billing.ErrVoucher):
		toAccount(w, r, "?m=badvoucher")
	case err != nil:
		s.pageFail(w, r, "redeeming voucher", err)
	default:
		toAccount(w, r, "?m=redeemed&days="+strconv.Itoa(days))
	}
}
