package site

import (
	"errors"
	"net/http"

	"veil/internal/apitypes"
	"veil/internal/store"
	"veil/internal/web"
)

// affiliatePageView is what affiliate.html shows.
type affiliatePageView struct {
	LoggedIn  bool
	Percent   int
	Affiliate *apitypes.Affiliate
}

// affiliatePage explains the affiliate program and, to an account that
// joined, shows its link and numbers.
func (s *Site) affiliatePage(w http.ResponseWriter, r *http.Request) {
	v := affiliatePageView{Percent: s.API.AffiliatePercent()}
	if acc, _ := s.pageAccount(r); acc != nil {
		v.LoggedIn = true
		a, err := s.API.Affiliate(r.Context(), acc.ID, s.API.PublicURL(r))
		switch {
		case err == nil:
			v.Affiliate = a
		case !errors.Is(err, store.ErrNotFound):
			s.pageFail(w, r, "reading affiliate", err)
			return
		}
	}
	s.page(w, r, "affiliate.html", web.Page{Title: "title.affiliate", Data: v})
}

func (s *Site) affiliateJoin(w http.ResponseWriter, r *http.Request) {
	if err := s.API.JoinAffiliate(r.Context(), accountFrom(r).ID); err != nil {
		s.pageFail(w, r, "joining affiliate program", err)
		return
	}
	// Back to the page in the language the form was sent from.
	_, prefix := web.Language(r)
	http.Redirect(w, r, prefix+"/affiliate", http.StatusSeeOther)
}
