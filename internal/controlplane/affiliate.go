package controlplane

import (
	"context"
	"errors"
	"net/http"
	"sort"

	"veil/internal/account"
	"veil/internal/apitypes"
	"veil/internal/billing"
	"veil/internal/store"
)

// The affiliate program: any account joins and gets a referral link
// /r/CODE; sign-ups through it are linked to the affiliate (referrals),
// and their payments credit it a share in the ledger, taken back on
// refund. The affiliate sees numbers, never who.
//
//	GET, POST /api/v1/affiliate                 its numbers; join
//	GET /affiliate, POST /affiliate/join        the page (package site)
//	GET /api/v1/admin/affiliates                every affiliate's balances
//	POST /api/v1/admin/affiliates/{code}/payouts {"amount": "10.00", "currency": "EUR"}

func (s *Server) affiliateView(r *http.Request, a *store.Affiliate) apitypes.Affiliate {
	return affiliateView(s.publicURL(r), a)
}

// affiliateView is a, its link under the site's address base.
func affiliateView(base string, a *store.Affiliate) apitypes.Affiliate {
	v := apitypes.Affiliate{Code: a.Code, Link: base + "/r/" + a.Code, Signups: a.Signups, Payments: a.Payments,
		Balances: []apitypes.Balance{}}
	for cur, cents := range a.Balances {
		v.Balances = append(v.Balances, apitypes.Balance{Amount: billing.FormatAmount(cents), AmountCents: cents, Currency: cur})
	}
	sort.Slice(v.Balances, func(i, j int) bool { return v.Balances[i].Currency < v.Balances[j].Currency })
	return v
}

// Affiliate is the account's part in the affiliate program, its link
// under the site's address base; store.ErrNotFound when it has not
// joined.
func (s *Server) Affiliate(ctx context.Context, accountID int64, base string) (*apitypes.Affiliate, error) {
	a, err := s.cfg.Store.AffiliateByAccount(ctx, accountID)
	if err != nil {
		return nil, err
	}
	v := affiliateView(base, a)
	return &v, nil
}

// AffiliatePercent is the affiliates' share of referred payments.
func (s *Server) AffiliatePercent() int { return s.cfg.Business.AffiliatePercent }

// JoinAffiliate makes the account an affiliate, drawing its code.
func (s *Server) JoinAffiliate(ctx context.Context, accountID int64) error {
	_, err := s.join(ctx, accountID)
	return err
}

// join makes the account an affiliate, drawing its code.
func (s *Server) join(ctx context.Context, accountID int64) (*store.Affiliate, error) {
	for range 5 {
		code, err := account.NewReferralCode()
		if err != nil {
			return nil, err
		}
		a, err := s.cfg.Store.JoinAffiliate(ctx, accountID, code, s.cfg.Now())
		if errors.Is(err, store.ErrDuplicateName) {
			continue
		}
		return a, err
	}
	return nil, store.ErrDuplicateName
}

func (s *Server) getAffiliate(w http.ResponseWriter, r *http.Request) {
	a, err := s.cfg.Store.AffiliateByAccount(r.Context(), accountFrom(r).ID)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not in the affiliate program: POST /api/v1/affiliate to join")
		return
	}
	if err != nil {
		s.fail(w, "reading affiliate", err)
		return
	}
	writeJSON(w, http.StatusOK, s.affiliateView(r, a))
}

func (s *Server) joinAffiliate(w http.ResponseWriter, r *http.Request) {
	a, err := s.join(r.Context(), accountFrom(r).ID)
	if err != nil {
		s.fail(w, "joining affiliate program", err)
		return
	}
	writeJSON(w, http.StatusOK, s.affiliateView(r, a))
}

func (s *Server) adminAffiliates(w http.ResponseWriter, r *http.Request) {
	as, err := s.cfg.Store.Affiliates(r.Context())
	if err != nil {
		s.fail(w, "reading affiliates", err)
		return
	}
	out := []apitypes.Affiliate{}
	for i := range as {
		out = append(out, s.affiliateView(r, &as[i]))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) adminPayout(w http.ResponseWriter, r *http.Request) {
	var req apitypes.AffiliatePayoutRequest
	if err := decode(w, r, &req); err != nil {
		writeDecodeError(w, err)
		return
	}
	cents, err := billing.ParseAmount(req.Amount)
	if err != nil || cents <= 0 {
		writeError(w, http.StatusBadRequest, "amount: a positive decimal such as 10.00")
		return
	}
	if len(req.Currency) != 3 || req.Currency != upperASCII(req.Currency) {
		writeError(w, http.StatusBadRequest, "currency: an ISO 4217 code such as EUR")
		return
	}
	a, err := s.cfg.Store.AffiliateByCode(r.Context(), r.PathValue("code"))
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no affiliate with that code")
		return
	}
	if err != nil {
		s.fail(w, "reading affiliate", err)
		return
	}
	if err := s.cfg.Store.RecordPayout(r.Context(), a.AccountID, cents, req.Currency, s.cfg.Now()); err != nil {
		s.fail(w, "recording payout", err)
		return
	}
	a, err = s.cfg.Store.AffiliateByAccount(r.Context(), a.AccountID)
	if err != nil {
		s.fail(w, "reading affiliate", err)
		return
	}
	writeJSON(w, http.StatusOK, s.affiliateView(r, a))
}

func upperASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 'A' || c > 'Z' {
			b[i] = 0
		}
	}
	return string(b)
}
