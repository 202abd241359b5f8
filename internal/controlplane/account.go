package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"veil/internal/account"
	"veil/internal/apitypes"
	"veil/internal/i18n"
	"veil/internal/store"
)

// errLogin is the one answer to every failed login, whatever the reason,
// so that a wrong code, a malformed one and a deleted account look alike.
const errLogin = "access code not recognised"

// Login failures that callers answer differently from internal errors.
var (
	ErrBadCode   = errors.New(errLogin)
	ErrThrottled = errors.New("too many failed attempts; try again later")
)

// Login checks an access code sent from src and opens a session. A wrong
// code, a malformed one and a deleted account's all give ErrBadCode, and
// cost the same work: the hash and the lookup run for every request.
// Failures count against src in the in-memory throttle; when it refuses,
// the error is ErrThrottled and wait says for how long.
func (s *Server) Login(ctx context.Context, src netip.Addr, code string) (sess apitypes.Session, wait time.Duration, err error) {
	if ok, wait := s.cfg.Throttle.Allowed(src); !ok {
		return sess, wait, ErrThrottled
	}
	code, normErr := account.NormalizeCode(code)
	acc, err := s.cfg.Store.AccountByCodeHash(ctx, s.cfg.Hasher.Code(code))
	if normErr != nil || errors.Is(err, store.ErrNotFound) {
		s.cfg.Throttle.Fail(src)
		return sess, 0, ErrBadCode
	}
	if err != nil {
		return sess, 0, fmt.Errorf("looking up account: %w", err)
	}
	tok, err := account.NewToken()
	if err != nil {
		return sess, 0, err
	}
	// The session records the login's day, nothing finer, as the
	// account's last use, which decides when an unused account is removed
	// (privacy.RuleUnusedAccount).
	now := s.cfg.Now()
	exp := now.Add(s.cfg.SessionTTL).UTC().Truncate(time.Second)
	if err := s.cfg.Store.CreateSession(ctx, store.Session{
		TokenHash: s.cfg.Hasher.Token(tok), AccountID: acc.ID, ExpiresAt: exp,
	}, now); err != nil {
		return sess, 0, fmt.Errorf("creating session: %w", err)
	}
	return apitypes.Session{Token: tok, ExpiresAt: exp}, 0, nil
}

func (s *Server) createSession(w http.ResponseWriter, r *http.Request) {
	var req apitypes.SessionRequest
	if err := decode(w, r, &req); err != nil {
		writeDecodeError(w, err)
		return
	}
	sess, wait, err := s.Login(r.Context(), s.cfg.Visitors.Key(r), req.AccessCode)
	switch {
	case errors.Is(err, ErrThrottled):
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		writeError(w, http.StatusTooManyRequests, err.Error())
	case errors.Is(err, ErrBadCode):
		writeError(w, http.StatusUnauthorized, errLogin)
	case err != nil:
		s.fail(w, "logging in", err)
	default:
		writeJSON(w, http.StatusCreated, sess)
	}
}

func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request) {
	hash := r.Context().Value(ctxSession).([]byte)
	if err := s.cfg.Store.DeleteSession(r.Context(), hash); err != nil {
		s.fail(w, "deleting session", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ErrNoSession is Session's answer to a token that opens no live
// session, or one whose account is gone.
var ErrNoSession = errors.New("session expired or unknown; log in again")

// Session is the account a session token opens, and the token's hash,
// which names the session to EndSession.
func (s *Server) Session(ctx context.Context, tok string) (*store.Account, []byte, error) {
	if tok == "" || len(tok) > 128 {
		return nil, nil, ErrNoSession
	}
	hash := s.cfg.Hasher.Token(tok)
	sess, err := s.cfg.Store.SessionByTokenHash(ctx, hash, s.cfg.Now())
	if errors.Is(err, store.ErrInvalidSession) || errors.Is(err, store.ErrNotFound) {
		return nil, nil, ErrNoSession
	}
	if err != nil {
		return nil, nil, fmt.Errorf("looking up session: %w", err)
	}
	acc, err := s.cfg.Store.AccountByID(ctx, sess.AccountID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, ErrNoSession
	}
	if err != nil {
		return nil, nil, fmt.Errorf("looking up account: %w", err)
	}
	return acc, hash, nil
}

// EndSession ends the session whose token hashes to hash.
func (s *Server) EndSession(ctx context.Context, hash []byte) error {
	return s.cfg.Store.DeleteSession(ctx, hash)
}

func (s *Server) accountView(r *http.Request, acc *store.Account) (apitypes.Account, error) {
	return s.Account(r.Context(), acc)
}

// Account is what the account holder sees of acc: plan, time, devices
// and how to pay.
func (s *Server) Account(ctx context.Context, acc *store.Account) (apitypes.Account, error) {
	devs, err := s.cfg.Store.Devices(ctx, acc.ID)
	if err != nil {
		return apitypes.Account{}, err
	}
	return apitypes.Account{
		Email:            acc.Email,
		Plan:             acc.Plan,
		PaidUntil:        timePtr(acc.PaidUntil),
		TrialUntil:       timePtr(acc.TrialUntil),
		Active:           acc.Active(s.cfg.Now()),
		MarketingConsent: acc.MarketingConsent,
		Restricted:       acc.Restricted,
		CreatedAt:        acc.CreatedAt,
		Devices:          len(devs),
		MaxDevices:       s.maxDevices(acc),
		PaymentReference: s.cfg.Hasher.PaymentRef(acc.ID),
		CheckoutURL:      s.checkoutURL(acc.ID),
		PayLinks:         s.payLinks(acc.ID),
		Lang:             acc.Lang,
	}, nil
}

func dateOrEmpty(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.DateOnly)
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func (s *Server) getAccount(w http.ResponseWriter, r *http.Request) {
	v, err := s.accountView(r, accountFrom(r))
	if err != nil {
		s.fail(w, "reading account", err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// ErrBadEmail is the answer to an address that cannot receive mail.
var ErrBadEmail = errors.New("email must be a plain address like name@example.org")

// CleanEmail checks an email address; empty means none.
func CleanEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	if len(s) > 254 {
		return "", ErrBadEmail
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" || !strings.Contains(s[strings.LastIndex(s, "@")+1:], ".") {
		return "", ErrBadEmail
	}
	return s, nil
}

// UpdateAccount changes what u sets of the account.
func (s *Server) UpdateAccount(ctx context.Context, accountID int64, u store.AccountUpdate) error {
	return s.cfg.Store.UpdateAccount(ctx, accountID, u)
}

// SetEmail gives the account an address (CleanEmail's; ErrBadEmail for
// one it refuses), or none when email is empty, which withdraws the
// marketing consent: there is nobody to send to.
func (s *Server) SetEmail(ctx context.Context, accountID int64, email string) error {
	email, err := CleanEmail(email)
	if err != nil {
		return err
	}
	u := store.AccountUpdate{Email: &email}
	if email == "" {
		no := false
		u.MarketingConsent = &no
	}
	return s.cfg.Store.UpdateAccount(ctx, accountID, u)
}

// DeleteAccount is the right to erasure (deleteAccount); an account
// already gone is no error.
func (s *Server) DeleteAccount(ctx context.Context, accountID int64) error {
	if err := s.cfg.Store.DeleteAccount(ctx, accountID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

func (s *Server) patchAccount(w http.ResponseWriter, r *http.Request) {
	acc := accountFrom(r)
	var p apitypes.AccountPatch
	if err := decode(w, r, &p); err != nil {
		writeDecodeError(w, err)
		return
	}
	u := store.AccountUpdate{MarketingConsent: p.MarketingConsent, Restricted: p.Restricted}
	if p.Lang != nil {
		if *p.Lang != "" && i18n.Known(*p.Lang) == "" {
			writeError(w, http.StatusBadRequest, "lang must be one of the site's languages: "+langCodes())
			return
		}
		lang := i18n.Known(*p.Lang)
		u.Lang = &lang
	}
	if p.Email != nil {
		e, err := CleanEmail(*p.Email)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		u.Email = &e
		if e == "" {
			// Without an address there is nobody to send marketing to.
			no := false
			u.MarketingConsent = &no
		}
	}
	if err := s.cfg.Store.UpdateAccount(r.Context(), acc.ID, u); err != nil {
		s.fail(w, "updating account", err)
		return
	}
	acc, err := s.cfg.Store.AccountByID(r.Context(), acc.ID)
	if err != nil {
		s.fail(w, "reading account", err)
		return
	}
	v, err := s.accountView(r, acc)
	if err != nil {
		s.fail(w, "reading account", err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// deleteAccount is the right to erasure: the account goes with its
// devices (which leave the peer map in the same transaction), sessions,
// support tickets and queued mail, by cascade in the store. Billing
// records, once they exist, are kept detached as the inventory says.
func (s *Server) deleteAccount(w http.ResponseWriter, r *http.Request) {
	if err := s.cfg.Store.DeleteAccount(r.Context(), accountFrom(r).ID); err != nil {
		s.fail(w, "deleting account", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// exportAccount is the right of access: every category of the data
// inventory, with all the account's rows (privacy.Exporter).
func (s *Server) exportAccount(w http.ResponseWriter, r *http.Request) {
	exp, err := s.Export(r.Context(), accountFrom(r).ID)
	if err != nil {
		s.fail(w, "exporting account", err)
		return
	}
	w.Header().Set("Content-Disposition", `attachment; filename="veil-account-export.json"`)
	writeJSON(w, http.StatusOK, exp)
}

func (s *Server) adminCreateAccount(w http.ResponseWriter, r *http.Request) {
	var req apitypes.AccountCreateRequest
	if err := decode(w, r, &req); err != nil {
		writeDecodeError(w, err)
		return
	}
	if req.Days < 0 || req.Days > 36500 {
		writeError(w, http.StatusBadRequest, "days must be between 0 and 36500")
		return
	}
	email, err := CleanEmail(req.Email)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	code, acc, err := s.CreateAccount(r.Context(), req.Days, email, "")
	if err != nil {
		s.fail(w, "creating account", err)
		return
	}
	v, err := s.accountView(r, acc)
	if err != nil {
		s.fail(w, "creating account", err)
		return
	}
	writeJSON(w, http.StatusCreated, apitypes.AccountCreated{AccessCode: code, Account: v})
}

// CreateAccount draws an access code and stores a new account: premium for
// days of paid time, or free with the configured trial when days is 0. It
// returns the code, which exists nowhere else afterwards. lang is the
// language of its mail (one of i18n.Langs), "" when none is known.
func (s *Server) CreateAccount(ctx context.Context, days int, email, lang string) (string, *store.Account, error) {
	now := s.cfg.Now().UTC().Truncate(time.Second)
	acc := &store.Account{Email: email, Plan: store.PlanFree, CreatedAt: now, Lang: lang}
	if days > 0 {
		acc.Plan = store.PlanPremium
		acc.PaidUntil = now.AddDate(0, 0, days)
	} else if s.cfg.TrialDays > 0 {
		acc.TrialUntil = now.AddDate(0, 0, s.cfg.TrialDays)
	}
	for range 5 {
		code, err := account.NewCode()
		if err != nil {
			return "", nil, err
		}
		acc.CodeHash = s.cfg.Hasher.Code(code)
		id, err := s.cfg.Store.CreateAccount(ctx, acc)
		if errors.Is(err, store.ErrCodeCollision) {
			continue
		}
		if err != nil {
			return "", nil, err
		}
		acc.ID = id
		return code, acc, nil
	}
	return "", nil, fmt.Errorf("drawing a unique access code: %w", store.ErrCodeCollision)
}
