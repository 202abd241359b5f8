package controlplane

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"veil/internal/account"
	"veil/internal/apitypes"
	"veil/internal/billing"
	"veil/internal/i18n"
	"veil/internal/mail"
	"veil/internal/pow"
	"veil/internal/store"
	"veil/internal/throttle"
)

// The provider's business side: sign-up with a proof of work, the plans
// and prices, vouchers (vouchers.go), expiry reminders and the affiliate
// program (affiliate.go).
//
//	GET  /api/v1/accounts/challenge   a proof-of-work challenge
//	POST /api/v1/accounts             sign up: {"challenge", "nonce", "referral", "lang"}
//	GET  /api/v1/plans                products, trial and free plan
//	GET  /signup, /pricing, /r/CODE   the pages (package site)
//
// A visitor is counted only in memory, by a keyed hash of the address
// (package throttle), as for logins: nothing about who signed up is kept.

// BusinessConfig configures the business side. Zero values are usable:
// no products, no free plan, no reminders.
type BusinessConfig struct {
	// Pow issues and checks sign-up challenges; nil: 18 bits, 10 minutes.
	Pow *pow.Issuer
	// Signups limits sign-ups per visitor; nil: 10 an hour.
	Signups *throttle.Throttle
	// Vouchers limits failed voucher redemptions per visitor; nil: 10 per
	// 10 minutes.
	Vouchers *throttle.Throttle
	// Products are the products on sale.
	Products billing.Products
	// StripeLinks are the products' Stripe Payment Links, by product.
	StripeLinks map[string]billing.StripeLink
	// ReminderDays is how many days before paid time ends the reminder
	// goes; 0: none.
	ReminderDays int
	// AffiliatePercent is the affiliates' share of referred payments.
	AffiliatePercent int
}

// business is the Server's business state.
type business struct {
	recorder   *billing.Recorder
	lastRemind time.Time
}

func (s *Server) initBusiness() {
	b := &s.cfg.Business
	if b.Pow == nil {
		b.Pow = pow.New(18, 10*time.Minute)
	}
	b.Pow.Now = s.cfg.Now
	if b.Signups == nil {
		b.Signups = throttle.New(10, time.Hour)
	}
	if b.Vouchers == nil {
		b.Vouchers = throttle.New(10, 10*time.Minute)
	}
	s.biz.recorder = &billing.Recorder{Store: s.cfg.Store, AffiliatePercent: b.AffiliatePercent,
		Receipt: s.queueReceipt, Now: s.cfg.Now}
}

func (s *Server) signupChallenge(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Challenge())
}

// Challenge is a new sign-up proof-of-work challenge.
func (s *Server) Challenge() apitypes.SignupChallenge {
	c := s.cfg.Business.Pow.Issue()
	return apitypes.SignupChallenge{Challenge: c.Challenge, Bits: c.Bits, ExpiresAt: c.ExpiresAt}
}

// errSignupThrottled is the answer to a visitor past its sign-ups.
var errSignupThrottled = errors.New("too many new accounts from your address; try again later")

// signup creates an account for a solved challenge: no personal data, the
// trial when one is configured, else an unpaid account (the free plan's
// when it is on). The access code is in the answer and nowhere else.
func (s *Server) signup(w http.ResponseWriter, r *http.Request) {
	var req apitypes.SignupRequest
	if err := decode(w, r, &req); err != nil {
		writeDecodeError(w, err)
		return
	}
	// The work is checked before the throttle counts: a visitor sending
	// garbage spends nothing of its allowance, and one that solved spends
	// its challenge even when throttled.
	if err := s.cfg.Business.Pow.Verify(req.Challenge, req.Nonce); err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, pow.ErrBusy) {
			status = http.StatusServiceUnavailable
		}
		writeError(w, status, err.Error())
		return
	}
	if ok, wait := s.cfg.Business.Signups.Take(s.cfg.Visitors.Key(r)); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		writeError(w, http.StatusTooManyRequests, errSignupThrottled.Error())
		return
	}
	var aff *store.Affiliate
	if req.Referral != "" {
		a, err := s.cfg.Store.AffiliateByCode(r.Context(), req.Referral)
		switch {
		case errors.Is(err, store.ErrNotFound):
			writeError(w, http.StatusBadRequest, "referral code not recognised; leave it empty to sign up without one")
			return
		case err != nil:
			s.fail(w, "reading affiliate", err)
			return
		}
		aff = a
	}
	code, acc, err := s.CreateAccount(r.Context(), 0, "", i18n.Known(req.Lang))
	if err != nil {
		s.fail(w, "signing up", err)
		return
	}
	if aff != nil {
		if err := s.cfg.Store.Refer(r.Context(), acc.ID, aff.AccountID, s.cfg.Now()); err != nil {
			s.log.Warn("recording referral", "err", err)
		}
	}
	v, err := s.accountView(r, acc)
	if err != nil {
		s.fail(w, "signing up", err)
		return
	}
	writeJSON(w, http.StatusCreated, apitypes.AccountCreated{AccessCode: account.FormatCode(code), Account: v})
}

// Plans are the products, trial and free plan, for the API and the
// pricing page.
func (s *Server) Plans() apitypes.Plans {
	fp := s.cfg.FreePlan
	out := apitypes.Plans{Products: []apitypes.Product{}, TrialDays: s.cfg.TrialDays, FreePlan: apitypes.FreePlan{
		Enabled: fp.Enabled, Locations: fp.Locations, Devices: fp.Devices, BandwidthKbps: int(fp.BandwidthBps / 1000)}}
	if out.FreePlan.Locations == nil {
		out.FreePlan.Locations = []string{}
	}
	for _, p := range s.cfg.Business.Products.Sorted() {
		ap := apitypes.Product{ID: p.ID, Name: p.Name, Days: p.Days, Plan: p.Plan}
		for _, pr := range p.Prices {
			ap.Prices = append(ap.Prices, apitypes.Price{Amount: pr.Amount(), AmountCents: pr.AmountCents, Currency: pr.Currency})
		}
		out.Products = append(out.Products, ap)
	}
	return out
}

func (s *Server) plans(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Plans())
}

// queueReceipt queues the receipt of a payment just recorded, when its
// account has an email, in the account's language.
func (s *Server) queueReceipt(ctx context.Context, p store.Payment) error {
	acc, err := s.cfg.Store.AccountByID(ctx, p.AccountID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if acc.Email == "" {
		return nil
	}
	subject, body := mail.Receipt{Product: p.Product, Days: p.Days, AmountCents: p.AmountCents, Currency: p.Currency,
		Processor: p.Processor, Reference: p.Reference, PaidUntil: acc.PaidUntil}.Text(mailLang(acc))
	if err := mail.Queue(ctx, s.cfg.Store, &store.Mail{Kind: store.MailTransactional, AccountID: acc.ID, To: acc.Email,
		Subject: subject, Body: body}); err != nil {
		return err
	}
	s.wakeMail()
	return nil
}

// remindEvery is how often the expiry reminders are looked for.
const remindEvery = time.Minute

// remindIfDue queues the expiry reminders due now, at most every
// remindEvery: one per account and paid period, claimed in the store so
// that several processes send it once.
func (s *Server) remindIfDue(ctx context.Context) {
	days := s.cfg.Business.ReminderDays
	now := s.cfg.Now()
	if days <= 0 || now.Sub(s.biz.lastRemind) < remindEvery {
		return
	}
	s.biz.lastRemind = now
	if _, err := s.SendReminders(ctx, now); err != nil && ctx.Err() == nil {
		s.log.Warn("queueing expiry reminders", "err", err)
	}
}

// SendReminders queues the reminders due at now, each in its account's
// language, and returns how many.
func (s *Server) SendReminders(ctx context.Context, now time.Time) (int, error) {
	days := s.cfg.Business.ReminderDays
	accs, err := s.cfg.Store.ExpiringAccounts(ctx, now, now.Add(time.Duration(days)*24*time.Hour))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, a := range accs {
		ok, err := s.cfg.Store.MarkReminded(ctx, a.ID, a.PaidUntil)
		if err != nil {
			return n, err
		}
		if !ok {
			continue
		}
		left := int(a.PaidUntil.Sub(now).Hours()/24 + 0.5)
		lang := mailLang(&a)
		subject, body := mail.Reminder{PaidUntil: a.PaidUntil, DaysLeft: left, AccountURL: s.siteURL(lang, "/account")}.Text(lang)
		if err := mail.Queue(ctx, s.cfg.Store, &store.Mail{Kind: store.MailTransactional, AccountID: a.ID, To: a.Email,
			Subject: subject, Body: body}); err != nil {
			return n, err
		}
		n++
	}
	if n > 0 {
		s.wakeMail()
	}
	return n, nil
}

// payLinks are the account's Stripe Payment Links, one per product that
// has one, in the pricing page's order.
func (s *Server) payLinks(accountID int64) []apitypes.PayLink {
	var out []apitypes.PayLink
	ref := s.cfg.Hasher.PaymentRef(accountID)
	for _, p := range s.cfg.Business.Products.Sorted() {
		if l, ok := s.cfg.Business.StripeLinks[p.ID]; ok {
			out = append(out, apitypes.PayLink{Product: p.ID, Name: p.Name, URL: l.For(ref)})
		}
	}
	return out
}
