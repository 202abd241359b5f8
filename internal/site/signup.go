package site

import (
	"net/http"
	"net/url"

	"veil/internal/apitypes"
	"veil/internal/web"
)

// signupPageView is what signup.html shows.
type signupPageView struct {
	Challenge apitypes.SignupChallenge
	Referral  string
	TrialDays int
	FreePlan  bool
}

// signupPage offers a new access code for a proof of work, which the
// page's script solves and sends to the API (POST /api/v1/accounts).
func (s *Site) signupPage(w http.ResponseWriter, r *http.Request) {
	ref := r.URL.Query().Get("ref")
	if len(ref) > 32 {
		ref = ""
	}
	plans := s.API.Plans()
	s.page(w, r, "signup.html", web.Page{Title: "title.signup", Data: signupPageView{
		Challenge: s.API.Challenge(),
		Referral:  ref, TrialDays: plans.TrialDays, FreePlan: plans.FreePlan.Enabled,
	}})
}

// referralLink leads to the sign-up page with the code filled in. The
// code travels in the URL only: no cookie is set.
func referralLink(w http.ResponseWriter, r *http.Request) {
	code := r.PathValue("code")
	if len(code) > 32 {
		web.NotFound(w, r)
		return
	}
	http.Redirect(w, r, "/signup?ref="+url.QueryEscape(code), http.StatusSeeOther)
}
