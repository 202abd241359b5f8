package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"veil/internal/account"
	"veil/internal/apitypes"
	"veil/internal/i18n"
	"veil/internal/mail"
	"veil/internal/privacy"
	"veil/internal/store"
	"veil/internal/throttle"
	"veil/internal/web"
)

// PrivacyConfig configures the privacy engine's routes: rights, policy,
// mail, support and client counters.
type PrivacyConfig struct {
	// Periods are the configured retention periods; zero: the defaults.
	Periods privacy.Periods
	// Prose is the operator's policy text shown until a version is
	// published; empty: privacy.DefaultProse.
	Prose string
	// ProseIn holds translations of the operator's text by language
	// code; a language without one shows the English text, saying so.
	ProseIn map[string]string
	// Controller is the operator as the policy names it.
	Controller privacy.Controller
	// PublicURL is the site's public base URL, for links in mail.
	PublicURL string
	// WakeMail nudges the mail sender after mail is queued; nil: none.
	WakeMail func()
	// Recover limits access-code recovery requests per source; nil: 5 an
	// hour.
	Recover *throttle.Throttle
}

func (s *Server) periods() privacy.Periods {
	p := s.cfg.Privacy.Periods
	if p.UnusedAccount == 0 {
		p.UnusedAccount = privacy.DefaultPeriods.UnusedAccount
	}
	if p.TaxYears == 0 {
		p.TaxYears = privacy.DefaultPeriods.TaxYears
	}
	return p
}

// registerPrivacy adds the privacy engine's API routes and pages.
func (s *Server) registerPrivacy(mux *http.ServeMux) {
	th := s.cfg.Privacy.Recover
	if th == nil {
		th = throttle.New(5, time.Hour)
	}
	mux.HandleFunc("POST /api/v1/account/recover", s.recoverCode(th))
	mux.HandleFunc("POST /account/recover", s.pageForm(s.recoverPage(th)))
	mux.HandleFunc("GET /account/recover/{token}", s.recoverLinkPage)
	mux.HandleFunc("POST /account/recover/{token}", s.pageForm(s.recoverLinkUse))
	mux.HandleFunc("GET /api/v1/privacy/versions", s.listPolicyVersions)
	mux.HandleFunc("POST /api/v1/client-report", s.clientReport)
	mux.HandleFunc("POST /unsubscribe", s.unsubscribe)
	mux.HandleFunc("GET /unsubscribe", s.unsubscribePage)

	mux.HandleFunc("POST /api/v1/admin/policy", s.withAdmin(s.adminPublishPolicy))
	mux.HandleFunc("POST /api/v1/admin/retention", s.withAdmin(s.adminRetention))
	mux.HandleFunc("POST /api/v1/admin/legal-hold", s.withAdmin(s.adminLegalHold))
	mux.HandleFunc("GET /api/v1/admin/stats", s.withAdmin(s.adminStats))

	s.registerSupport(mux)
	s.registerPages(mux)
}

// Sweeper returns the retention sweeper over the server's store and clock.
func (s *Server) Sweeper() *privacy.Sweeper {
	return &privacy.Sweeper{Store: s.cfg.Store, Periods: s.periods(), Now: s.cfg.Now, Logger: s.log.With("part", "retention")}
}

// Export is the right of access: every category of the inventory for the
// account.
func (s *Server) Export(ctx context.Context, accountID int64) (*privacy.Export, error) {
	e := &privacy.Exporter{Store: s.cfg.Store, Now: s.cfg.Now, Addresses: func(i int64) (string, string) {
		a4, a6 := s.cfg.Pools.AllowedIPs(i)
		return a4.String(), a6.String()
	}}
	return e.Export(ctx, accountID)
}

// Sign makes unsubscribe-link signatures with the server's key.
func (s *Server) Sign(v string) []byte { return s.cfg.Hasher.Token(v) }

func (s *Server) wakeMail() {
	if s.cfg.Privacy.WakeMail != nil {
		s.cfg.Privacy.WakeMail()
	}
}

func (s *Server) publicURL(r *http.Request) string {
	if u := strings.TrimSuffix(s.cfg.Privacy.PublicURL, "/"); u != "" {
		return u
	}
	scheme := "http"
	if r != nil && r.TLS != nil {
		scheme = "https"
	}
	if r == nil {
		return ""
	}
	return scheme + "://" + r.Host
}

// recoverAnswer is the one answer to every recovery request, so that it
// never tells whether an email is registered: the account page's note,
// in English as the API speaks.
var recoverAnswer = i18n.For(i18n.Default).T("account.m.recover")

// recoverCode answers access-code recovery requests, limited per source
// by th (in memory, on a keyed hash of the address).
func (s *Server) recoverCode(th *throttle.Throttle) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		src := s.cfg.Visitors.Key(r)
		if ok, wait := th.Allowed(src); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
			writeError(w, http.StatusTooManyRequests, "too many requests; try again later")
			return
		}
		th.Fail(src) // every request counts
		s.recoverCodeOnce(w, r)
	}
}

// recoverPage is the /account page's form for a lost access code; it
// answers every well-formed request alike, as the API does.
func (s *Server) recoverPage(th *throttle.Throttle) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		lang, prefix := web.Language(r)
		src := s.cfg.Visitors.Key(r)
		if ok, _ := th.Allowed(src); !ok {
			toAccount(w, r, "?m=throttled")
			return
		}
		th.Fail(src)
		email, err := CleanEmail(r.PostForm.Get("email"))
		if err != nil || email == "" {
			toAccount(w, r, "?m=bademail")
			return
		}
		if err := s.RecoverCode(r.Context(), email, lang, prefix); err != nil {
			s.pageFail(w, r, "recovering access code", err)
			return
		}
		toAccount(w, r, "?m=recover")
	}
}

func (s *Server) recoverCodeOnce(w http.ResponseWriter, r *http.Request) {
	var req apitypes.RecoverRequest
	if err := decode(w, r, &req); err != nil {
		writeDecodeError(w, err)
		return
	}
	email, err := CleanEmail(req.Email)
	if err != nil || email == "" {
		writeError(w, http.StatusBadRequest, ErrBadEmail.Error())
		return
	}
	if err := s.RecoverCode(r.Context(), email, "", ""); err != nil {
		s.fail(w, "recovering access code", err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"message": recoverAnswer})
}

// RecoverCode mails every account holding email a one-time link to a
// page that issues a new access code. Nothing changes until the link is
// used, so a stranger who knows the email cannot lock the owner out. The
// outbox holds no code and no usable link: the mail sender completes the
// link's token from a nonce (mail.LinkPlaceholder), and the store keeps
// only the token's keyed hash. An account that has
// store.MaxRecoveryLinks unused links gets no more mail until they
// expire. The mail is in lang, the language of the page the request came
// from, and its link leads to the page in that language (prefix, "/de");
// asked for with no page (lang ""), each mail is in its account's
// language.
func (s *Server) RecoverCode(ctx context.Context, email, lang, prefix string) error {
	accs, err := s.cfg.Store.AccountsByEmail(ctx, email)
	if err != nil {
		return err
	}
	sent := false
	for _, a := range accs {
		nonce, err := account.NewToken()
		if err != nil {
			return err
		}
		now := s.cfg.Now()
		err = s.cfg.Store.CreateRecoveryToken(ctx, store.RecoveryToken{
			TokenHash: s.recoveryHash(mail.LinkToken(s.Sign, nonce)), AccountID: a.ID, ExpiresAt: now.Add(privacy.RecoveryLinkTTL),
		}, now)
		if errors.Is(err, store.ErrRecoveryLimit) || errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		l, pre := i18n.For(lang), prefix
		if lang == "" {
			l = i18n.For(mailLang(&a))
			pre = i18n.Prefix(l.Lang.Code)
		}
		body := l.N("mail.recover.body", int(privacy.RecoveryLinkTTL/time.Minute), "Link", mail.LinkPlaceholder(pre+"/account/recover/", nonce))
		if err := mail.Queue(ctx, s.cfg.Store, &store.Mail{Kind: store.MailTransactional, AccountID: a.ID, To: a.Email,
			Subject: l.T("mail.recover.subject"), Body: body}); err != nil {
			return err
		}
		sent = true
	}
	if sent {
		s.wakeMail()
	}
	return nil
}

func (s *Server) recoveryHash(tok string) []byte { return s.cfg.Hasher.Token("recover:" + tok) }

// recoverView is what recover.html shows: the confirmation form, then
// the new code.
type recoverView struct {
	Token string
	Code  string
}

// recoverLinkPage is where the mailed link leads: a confirmation form
// only, since mail scanners fetch links and must not spend them.
func (s *Server) recoverLinkPage(w http.ResponseWriter, r *http.Request) {
	tok := r.PathValue("token")
	if len(tok) > 128 {
		s.recoverLinkGone(w, r)
		return
	}
	_, err := s.cfg.Store.RecoveryTokenByHash(r.Context(), s.recoveryHash(tok), s.cfg.Now())
	if errors.Is(err, store.ErrNotFound) {
		s.recoverLinkGone(w, r)
		return
	}
	if err != nil {
		s.pageFail(w, r, "reading recovery link", err)
		return
	}
	s.page(w, r, "recover.html", web.Page{Title: "title.new_code", Data: recoverView{Token: tok}})
}

// recoverLinkUse spends the link: a new access code, shown once, and
// every session of the account ended.
func (s *Server) recoverLinkUse(w http.ResponseWriter, r *http.Request) {
	tok := r.PathValue("token")
	if len(tok) > 128 {
		s.recoverLinkGone(w, r)
		return
	}
	var code string
	var err error
	for range 5 {
		if code, err = account.NewCode(); err != nil {
			break
		}
		_, err = s.cfg.Store.UseRecoveryToken(r.Context(), s.recoveryHash(tok), s.cfg.Hasher.Code(code), s.cfg.Now())
		if !errors.Is(err, store.ErrCodeCollision) {
			break
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		s.recoverLinkGone(w, r)
		return
	}
	if err != nil {
		s.pageFail(w, r, "recovering access code", err)
		return
	}
	// This browser's session, if any, has ended with the others.
	s.setSessionCookie(w, r, "", time.Unix(1, 0))
	s.page(w, r, "recover.html", web.Page{Title: "title.new_code", Data: recoverView{Code: account.FormatCode(code)}})
}

func (s *Server) recoverLinkGone(w http.ResponseWriter, r *http.Request) {
	web.Render(w, r, "notice.html", web.Page{Title: "title.link_expired", Status: http.StatusNotFound,
		Data: "notice.link_expired"})
}

// PolicyVersionInfo is one published policy version in the API.
type PolicyVersionInfo struct {
	ID          int64     `json:"id"`
	PublishedAt time.Time `json:"published_at"`
	Body        string    `json:"body,omitempty"`
}

func (s *Server) listPolicyVersions(w http.ResponseWriter, r *http.Request) {
	vs, err := s.cfg.Store.PolicyVersions(r.Context())
	if err != nil {
		s.fail(w, "listing policy versions", err)
		return
	}
	out := []PolicyVersionInfo{}
	for _, v := range vs {
		out = append(out, PolicyVersionInfo{ID: v.ID, PublishedAt: v.PublishedAt, Body: v.Body})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) adminPublishPolicy(w http.ResponseWriter, r *http.Request) {
	var req apitypes.PublishRequest
	if err := decode(w, r, &req); err != nil {
		writeDecodeError(w, err)
		return
	}
	if strings.TrimSpace(req.Prose) == "" {
		writeError(w, http.StatusBadRequest, "prose must not be empty")
		return
	}
	out, err := s.PublishPolicy(r.Context(), req.Prose, s.publicURL(r))
	if err != nil {
		s.fail(w, "publishing policy", err)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

// PublishPolicy stores a new policy version from the operator's prose and
// the inventory, and queues a transactional notice to every account with
// an email, in its language.
func (s *Server) PublishPolicy(ctx context.Context, prose, base string) (*apitypes.Published, error) {
	doc := privacy.Render(i18n.Default, prose, i18n.Default, s.cfg.Privacy.Controller, s.periods())
	v := &store.PolicyVersion{PublishedAt: s.cfg.Now().UTC(), Prose: prose, Body: doc.Text()}
	if _, err := s.cfg.Store.PublishPolicy(ctx, v); err != nil {
		return nil, err
	}
	accs, err := s.cfg.Store.AccountsWithEmail(ctx)
	if err != nil {
		return nil, err
	}
	n := 0
	for _, a := range accs {
		lang := mailLang(&a)
		l := i18n.For(lang)
		link := fmt.Sprintf("%s%s/privacy/versions?to=%d", base, i18n.Prefix(lang), v.ID)
		body := l.T("mail.policy.body", "Date", mail.Date(lang, v.PublishedAt), "Link", link)
		if err := mail.Queue(ctx, s.cfg.Store, &store.Mail{Kind: store.MailTransactional, AccountID: a.ID, To: a.Email,
			Subject: l.T("mail.policy.subject"), Body: body}); err != nil {
			return nil, err
		}
		n++
	}
	s.wakeMail()
	return &apitypes.Published{Version: v.ID, Notices: n}, nil
}

func (s *Server) adminRetention(w http.ResponseWriter, r *http.Request) {
	ds, err := s.Sweeper().Run(r.Context())
	if err != nil {
		s.fail(w, "running retention", err)
		return
	}
	writeJSON(w, http.StatusOK, ds)
}

func (s *Server) adminLegalHold(w http.ResponseWriter, r *http.Request) {
	var req apitypes.LegalHoldRequest
	if err := decode(w, r, &req); err != nil {
		writeDecodeError(w, err)
		return
	}
	var accs []store.Account
	switch {
	case req.AccessCode != "":
		code, err := account.NormalizeCode(req.AccessCode)
		if err != nil {
			writeError(w, http.StatusBadRequest, "malformed access code")
			return
		}
		a, err := s.cfg.Store.AccountByCodeHash(r.Context(), s.cfg.Hasher.Code(code))
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.fail(w, "setting legal hold", err)
			return
		}
		if a != nil {
			accs = append(accs, *a)
		}
	case req.Email != "":
		var err error
		if accs, err = s.cfg.Store.AccountsByEmail(r.Context(), req.Email); err != nil {
			s.fail(w, "setting legal hold", err)
			return
		}
	default:
		writeError(w, http.StatusBadRequest, "give access_code or email")
		return
	}
	if len(accs) == 0 {
		writeError(w, http.StatusNotFound, "no such account")
		return
	}
	for _, a := range accs {
		if err := s.cfg.Store.UpdateAccount(r.Context(), a.ID, store.AccountUpdate{LegalHold: &req.Hold}); err != nil {
			s.fail(w, "setting legal hold", err)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]int{"accounts": len(accs)})
}

// Version strings are short and plain so that none can carry an
// identifier: "linux 6.1", "windows 11", "1.4.2", "1.5.0-rc1".
var (
	osVersionRE  = regexp.MustCompile(`^[a-z]{2,12}( [0-9][0-9a-z.]{0,15})?$`)
	appVersionRE = regexp.MustCompile(`^(dev|[0-9]{1,4}\.[0-9]{1,4}(\.[0-9]{1,4})?(-[a-z0-9]{1,12})?)$`)
)

func (s *Server) clientReport(w http.ResponseWriter, r *http.Request) {
	var req apitypes.ClientReport
	if err := decode(w, r, &req); err != nil {
		writeDecodeError(w, err)
		return
	}
	if err := s.CountClient(r.Context(), req); err != nil {
		if errors.Is(err, errBadRequest) {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		s.fail(w, "counting client", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// CountClient adds a client report to the day's aggregate count; nothing
// about the request other than the two versions is used.
func (s *Server) CountClient(ctx context.Context, c apitypes.ClientReport) error {
	osv, app := strings.ToLower(strings.TrimSpace(c.OSVersion)), strings.ToLower(strings.TrimSpace(c.AppVersion))
	if !osVersionRE.MatchString(osv) || !appVersionRE.MatchString(app) {
		return fmt.Errorf("%w: os_version like \"linux 6.1\" and app_version like \"1.2.3\" are required", errBadRequest)
	}
	return s.cfg.Store.CountClient(ctx, privacy.Day(s.cfg.Now()), osv, app)
}

func (s *Server) adminStats(w http.ResponseWriter, r *http.Request) {
	cs, err := s.cfg.Store.ClientCounts(r.Context())
	if err != nil {
		s.fail(w, "reading stats", err)
		return
	}
	out := []apitypes.ClientCount{}
	for _, c := range cs {
		out = append(out, apitypes.ClientCount{Day: c.Day, OSVersion: c.OSVersion, AppVersion: c.AppVersion, Count: c.Count})
	}
	writeJSON(w, http.StatusOK, out)
}

// unsubscribe is the RFC 8058 one-click endpoint (and the page's form):
// a POST withdraws marketing consent, with no further step.
func (s *Server) unsubscribe(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.URL.Query().Get("a"), 10, 64)
	lang, _ := web.Language(r)
	l := i18n.For(lang)
	if err != nil || !mail.CheckUnsubscribe(s.Sign, id, r.URL.Query().Get("t")) {
		http.Error(w, l.T("unsubscribe.invalid"), http.StatusBadRequest)
		return
	}
	no := false
	err = s.cfg.Store.UpdateAccount(r.Context(), id, store.AccountUpdate{MarketingConsent: &no})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.fail(w, "unsubscribing", err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintln(w, l.T("unsubscribe.done"))
}

// SetPrivacy configures the privacy engine; call it before Register.
func (s *Server) SetPrivacy(p PrivacyConfig) { s.cfg.Privacy = p }
