package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
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

// PublicURL is the site's address: the configured public URL, else the
// address r was sent to (none when r is nil).
func (s *Server) PublicURL(r *http.Request) string { return s.publicURL(r) }

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
// (RecoverAllowed).
func (s *Server) recoverCode(w http.ResponseWriter, r *http.Request) {
	if ok, wait := s.RecoverAllowed(s.cfg.Visitors.Key(r)); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		writeError(w, http.StatusTooManyRequests, "too many requests; try again later")
		return
	}
	s.recoverCodeOnce(w, r)
}

// RecoverAllowed counts a recovery request from src, the API's or the
// account page's, and reports whether src is still within its allowance
// (in memory, on a keyed hash of the address); if not, wait says for
// how long.
func (s *Server) RecoverAllowed(src netip.Addr) (ok bool, wait time.Duration) {
	if ok, wait := s.recover.Allowed(src); !ok {
		return false, wait
	}
	s.recover.Fail(src) // every request counts
	return true, 0
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

// RecoveryLinkValid reports whether the mailed recovery link's token is
// unused and unexpired; it spends nothing.
func (s *Server) RecoveryLinkValid(ctx context.Context, tok string) (bool, error) {
	if len(tok) > 128 {
		return false, nil
	}
	_, err := s.cfg.Store.RecoveryTokenByHash(ctx, s.recoveryHash(tok), s.cfg.Now())
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// UseRecoveryLink spends the link: the account gets a new access code,
// returned formatted and kept nowhere else, and every session of the
// account ends. A link unknown, used or expired is store.ErrNotFound.
func (s *Server) UseRecoveryLink(ctx context.Context, tok string) (string, error) {
	if len(tok) > 128 {
		return "", store.ErrNotFound
	}
	var code string
	var err error
	for range 5 {
		if code, err = account.NewCode(); err != nil {
			return "", err
		}
		_, err = s.cfg.Store.UseRecoveryToken(ctx, s.recoveryHash(tok), s.cfg.Hasher.Code(code), s.cfg.Now())
		if !errors.Is(err, store.ErrCodeCollision) {
			break
		}
	}
	if err != nil {
		return "", err
	}
	return account.FormatCode(code), nil
}

// PolicyVersionInfo is one published policy version in the API.
type PolicyVersionInfo struct {
	ID          int64     `json:"id"`
	PublishedAt time.Time `json:"published_at"`
	Body        string    `json:"body,omitempty"`
}

// PolicyVersions are the published policy versions, oldest first.
func (s *Server) PolicyVersions(ctx context.Context) ([]store.PolicyVersion, error) {
	return s.cfg.Store.PolicyVersions(ctx)
}

// Policy is the privacy policy in lang, and the published version it
// is (nil: none published yet). The operator's prose is the published
// version's (or the configured one until a version is published), in
// English; a translation the operator gave (policy_file with {lang})
// replaces it, and without one the document says the prose is in
// English. With no prose of the operator's at all, the built-in text is
// in every language.
func (s *Server) Policy(ctx context.Context, lang string) (*privacy.Document, *store.PolicyVersion, error) {
	vs, err := s.cfg.Store.PolicyVersions(ctx)
	if err != nil {
		return nil, nil, err
	}
	var version *store.PolicyVersion
	pr := privacy.Prose{Text: s.cfg.Privacy.Prose, In: s.cfg.Privacy.ProseIn}
	if len(vs) > 0 {
		version = &vs[len(vs)-1]
		pr.Text = version.Prose
	}
	var prose, proseLang string
	if pr.Text == "" {
		prose, proseLang = privacy.DefaultProse(lang), lang
	} else {
		prose, proseLang = pr.For(lang)
	}
	return privacy.Render(lang, prose, proseLang, s.cfg.Privacy.Controller, s.periods()), version, nil
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

// ErrBadLink is Unsubscribe's answer to a link this server did not sign.
var ErrBadLink = errors.New("unsubscribe link not valid")

// Unsubscribe withdraws the marketing consent of account id, named by a
// mailed link signed with sig (mail.CheckUnsubscribe). An account
// already gone is no error.
func (s *Server) Unsubscribe(ctx context.Context, id int64, sig string) error {
	if !mail.CheckUnsubscribe(s.Sign, id, sig) {
		return ErrBadLink
	}
	no := false
	err := s.cfg.Store.UpdateAccount(ctx, id, store.AccountUpdate{MarketingConsent: &no})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// SetPrivacy configures the privacy engine; call it before Register.
func (s *Server) SetPrivacy(p PrivacyConfig) {
	s.cfg.Privacy = p
	s.recover = p.Recover
	if s.recover == nil {
		s.recover = throttle.New(5, time.Hour)
	}
}
