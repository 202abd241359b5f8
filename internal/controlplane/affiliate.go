package controlplane

import (
	"errors"
	"net/http"
	"sort"

	"veil/internal/account"
	"veil/internal/apitypes"
	"veil/internal/billing"
	"veil/internal/store"
	"veil/internal/web"
)

// The affiliate program: any account joins and gets a referral link
// /r/CODE; sign-ups through it are linked to the affiliate (referrals),
// and their payments credit it a share in the ledger, taken back on
// refund. The affiliate sees numbers, never who.
//
//	GET, POST /api/v1/affiliate                 its numbers; join
//	GET /affiliate, POST /affiliate/join        the page
//	GET /api/v1/admin/affiliates                every affiliate's balances
//	POST /api/v1/admin/affiliates/{code}/payouts {"amount": "10.00", "currency": "EUR"}

func (s *Server) registerAffiliate(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/affiliate", s.withAccount(s.getAffiliate))
	mux.HandleFunc("POST /api/v1/affiliate", s.withAccount(s.joinAffiliate))
	mux.HandleFunc("GET /affiliate", s.affiliatePage)
	mux.HandleFunc("POST /affiliate/join", s.pageForm(s.withPageAccount(s.affiliatePageJoin)))
	mux.HandleFunc("GET /api/v1/admin/affiliates", s.withAdmin(s.adminAffiliates))
	mux.HandleFunc("POST /api/v1/admin/affiliates/{code}/payouts", s.withAdmin(s.adminPayout))
}

func (s *Server) affiliateView(r *http.Request, a *store.Affiliate) apitypes.Affiliate {
	v := apitypes.Affiliate{Code: a.Code, Link: s.publicURL(r) + "/r/" + a.Code, Signups: a.Signups, Payments: a.Payments,
		Balances: []apitypes.Balance{}}
	for cur, cents := range a.Balances {
		v.Balances = append(v.Balances, apitypes.Balance{Amount: billing.FormatAmount(cents), AmountCents: cents, Currency: cur})
	}
	sort.Slice(v.Balances, func(i, j int) bool { return v.Balances[i].Currency < v.Balances[j].Currency })
	return v
}

// join makes the account an affiliate, drawing its code.
func (s *Server) join(r *http.Request, accountID int64) (*store.Affiliate, error) {
	for range 5 {
		code, err := account.NewReferralCode()
		if err != nil {
			return nil, err
		}
		a, err := s.cfg.Store.JoinAffiliate(r.Context(), accountID, code, s.cfg.Now())
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
	a, err := s.join(r, accountFrom(r).ID)
	if err != nil {
		s.fail(w, "joining affiliate program", err)
		return
	}
	writeJSON(w, http.StatusOK, s.affiliateView(r, a))
}

// affiliatePageView is what affiliate.html shows.
type affiliatePageView struct {
	LoggedIn  bool
	Percent   int
	Affiliate *apitypes.Affiliate
}

func (s *Server) affiliatePage(w http.ResponseWriter, r *http.Request) {
	v := affiliatePageView{Percent: s.cfg.Business.AffiliatePercent}
	if acc, _ := s.pageAccount(r); acc != nil {
		v.LoggedIn = true
		a, err := s.cfg.Store.AffiliateByAccount(r.Context(), acc.ID)
		switch {
		case err == nil:
			av := s.affiliateView(r, a)
			v.Affiliate = &av
		case !errors.Is(err, store.ErrNotFound):
			s.pageFail(w, r, "reading affiliate", err)
			return
		}
	}
	s.page(w, r, "affiliate.html", web.Page{Title: "title.affiliate", Data: v})
}

func (s *Server) affiliatePageJoin(w http.ResponseWriter, r *http.Request) {
	if _, err := s.join(r, accountFrom(r).ID); err != nil {
		s.pageFail(w, r, "joining affiliate program", err)
		return
	}
	// Back to the page in the language the form was sent from.
	_, prefix := web.Language(r)
	http.Redirect(w, r, prefix+"/affiliate", http.StatusSeeOther)
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
