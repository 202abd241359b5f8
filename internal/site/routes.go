package site

import "net/http"

// Mux is where the site's routes are registered: an *http.ServeMux, or
// a test's recorder of the patterns.
type Mux interface {
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

var _ Mux = (*http.ServeMux)(nil)

// Register mounts every page of the site on mux: this is the one list of
// the site's routes. Each answers under a language prefix too (/de/account
// is /account in German): web.Localize, in front of the mux, takes the
// prefix off, and the pages keep it in their links and redirects.
// Forms are guarded by pageForm (forms.go); a route behind
// withPageAccount sends a visitor without a session to the login form.
func (s *Site) Register(mux Mux) {
	// The provider's own pages (site.go, prose.go, feed.go, servers.go,
	// download.go).
	mux.HandleFunc("GET /vpn", s.vpn)
	mux.HandleFunc("GET /terms", s.single("terms"))
	mux.HandleFunc("GET /refund", s.single("refund"))
	mux.HandleFunc("GET /help", s.index("help", "title.help"))
	mux.HandleFunc("GET /help/{slug}", s.entry("help"))
	mux.HandleFunc("GET /blog", s.index("blog", "title.blog"))
	mux.HandleFunc("GET /blog/{slug}", s.entry("blog"))
	mux.HandleFunc("GET /blog/feed.atom", s.feed)
	mux.HandleFunc("GET /apps-privacy", s.appsPrivacy)
	mux.HandleFunc("GET /cookies", s.cookies)
	mux.HandleFunc("GET /contacts", s.contacts)
	mux.HandleFunc("GET /servers", s.serversPage)
	dl := downloads{Dir: s.DownloadsDir}
	mux.HandleFunc("GET /download", dl.page)
	mux.HandleFunc("GET /download/{file}", dl.file)

	// Shop (signup.go, pricing.go, affiliate.go).
	mux.HandleFunc("GET /signup", s.signupPage)
	mux.HandleFunc("GET /pricing", s.pricingPage)
	mux.HandleFunc("GET /r/{code}", referralLink)
	mux.HandleFunc("GET /affiliate", s.affiliatePage)
	mux.HandleFunc("POST /affiliate/join", s.pageForm(s.withPageAccount(s.affiliateJoin)))

	// The account page (account.go, devices.go).
	mux.HandleFunc("GET /account", s.accountPage)
	mux.HandleFunc("POST /account/login", s.pageForm(s.accountLogin))
	mux.HandleFunc("POST /account/logout", s.pageForm(s.accountLogout))
	mux.HandleFunc("POST /account/email", s.pageForm(s.withPageAccount(s.accountEmail)))
	mux.HandleFunc("POST /account/restrict", s.pageForm(s.withPageAccount(s.accountFlag("restricted"))))
	mux.HandleFunc("POST /account/marketing", s.pageForm(s.withPageAccount(s.accountFlag("marketing"))))
	mux.HandleFunc("POST /account/erase", s.pageForm(s.withPageAccount(s.accountErase)))
	mux.HandleFunc("GET /account/export", s.withPageAccount(s.accountExport))
	mux.HandleFunc("POST /account/redeem", s.pageForm(s.withPageAccount(s.accountRedeem)))
	mux.HandleFunc("POST /account/recover", s.pageForm(s.recoverCode))
	mux.HandleFunc("GET /account/recover/{token}", s.recoverLinkPage)
	mux.HandleFunc("POST /account/recover/{token}", s.pageForm(s.recoverLinkUse))
	mux.HandleFunc("POST /account/devices", s.pageJSON(s.API.CreateDeviceAs))
	mux.HandleFunc("POST /account/devices/{id}/rename", s.pageForm(s.withPageAccount(s.pageRenameDevice)))
	mux.HandleFunc("POST /account/devices/{id}/remove", s.pageForm(s.withPageAccount(s.pageRemoveDevice)))

	// Support (support.go).
	mux.HandleFunc("GET /support", s.supportPage)
	mux.HandleFunc("POST /support", s.pageForm(s.supportSubmit))
	mux.HandleFunc("GET /support/ticket/{token}", s.ticketPage)
	mux.HandleFunc("POST /support/ticket/{token}", s.pageForm(s.ticketPageReply))

	// Privacy (privacy.go). POST /unsubscribe is also the mail clients'
	// one-click (RFC 8058), so it takes no form token.
	mux.HandleFunc("GET /privacy", s.privacyPage)
	mux.HandleFunc("GET /privacy/versions", s.versionsPage)
	mux.HandleFunc("GET /unsubscribe", unsubscribePage)
	mux.HandleFunc("POST /unsubscribe", s.unsubscribe)
}
