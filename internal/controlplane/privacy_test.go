package controlplane_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"veil/internal/apitypes"
	"veil/internal/mail"
	"veil/internal/privacy"
	"veil/internal/site/sitetest"
	"veil/internal/store"
)

// TestRights is done-when point 4 over the API: access (export of every
// category), rectify, restrict, object, erase (devices leave the peer map
// in the same change; tickets, sessions and queued mail go).
func TestRights(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	code := e.newAccount(t, 30)
	tok := e.login(t, code)
	email := "someone@example.org"
	yes := true
	if st := e.call(t, "PATCH", "/api/v1/account", tok, apitypes.AccountPatch{Email: &email, MarketingConsent: &yes, Restricted: &yes}, nil); st != 200 {
		t.Fatalf("patch: %d", st)
	}
	var dev apitypes.Device
	if st := e.call(t, "POST", "/api/v1/devices", tok, apitypes.DeviceRequest{PublicKey: newPub(t), Name: "laptop"}, &dev); st != 201 {
		t.Fatalf("device: %d", st)
	}
	var tk apitypes.TicketCreated
	if st := e.call(t, "POST", "/api/v1/support/tickets", tok, apitypes.TicketRequest{Subject: "Help", Message: "My tunnel"}, &tk); st != 201 {
		t.Fatalf("ticket: %d", st)
	}
	var exp privacy.Export
	if st := e.call(t, "GET", "/api/v1/account/export", tok, nil, &exp); st != 200 {
		t.Fatalf("export: %d", st)
	}
	for _, c := range privacy.Inventory {
		if _, ok := exp.Categories[c.ID]; !ok {
			t.Errorf("export lacks %s", c.ID)
		}
	}
	acc := exp.Categories["account"].Records["accounts"]
	if len(acc) != 1 || acc[0]["email"] != email || acc[0]["restricted"] != true || acc[0]["marketing_consent"] != true || acc[0]["last_used"] == nil {
		t.Errorf("exported account = %v", acc)
	}
	if d := exp.Categories["devices"].Records["devices"]; len(d) != 1 || d[0]["ipv4"] != dev.IPv4 {
		t.Errorf("exported devices = %v, want ipv4 %s", d, dev.IPv4)
	}
	if m := exp.Categories["support"].Records["support_messages"]; len(m) != 1 || m[0]["body"] != "My tunnel" {
		t.Errorf("exported messages = %v", m)
	}

	// Erase, with a gateway that holds the map and so needs the removal.
	v, err := e.store.PeerVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pollPeers(t, e.url, e.addGateway(t, "gw1"), v, 0)
	if st := e.call(t, "DELETE", "/api/v1/account", tok, nil, nil); st != 204 {
		t.Fatalf("erase: %d", st)
	}
	pc, err := e.store.PeersSince(ctx, v)
	if err != nil || len(pc.Removed) != 1 || pc.Removed[0] != dev.PublicKey {
		t.Errorf("peer-map delta after erase = %+v, %v; want the device removed", pc, err)
	}
	if ts, err := e.store.Tickets(ctx, ""); err != nil || len(ts) != 0 {
		t.Errorf("tickets after erase: %v, %v", ts, err)
	}
	if st := e.call(t, "GET", "/api/v1/account", tok, nil, nil); st != 401 {
		t.Errorf("session after erase: %d, want 401", st)
	}
	if st := e.call(t, "POST", "/api/v1/sessions", "", apitypes.SessionRequest{AccessCode: code}, nil); st != 401 {
		t.Errorf("login after erase: %d", st)
	}
}

// TestRecoverCode: a recovery request changes nothing but a mail with a
// one-time link; the outbox holds no code and no usable link; the link's
// page spends nothing on a GET (mail scanners fetch links); its button
// issues the new code, shown once, and ends every session, a stranger's
// included.
func TestRecoverCode(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	code := e.newAccount(t, 30)
	tok := e.login(t, code)
	email := "owner@example.org"
	if st := e.call(t, "PATCH", "/api/v1/account", tok, apitypes.AccountPatch{Email: &email}, nil); st != 200 {
		t.Fatal(st)
	}
	answers := map[string]string{}
	for _, em := range []string{"OWNER@example.org", "nobody@example.org"} {
		resp, err := http.Post(e.url+"/api/v1/account/recover", "application/json", strings.NewReader(`{"email":"`+em+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answers[em] = resp.Status + string(b)
	}
	if answers["OWNER@example.org"] != answers["nobody@example.org"] || !strings.HasPrefix(answers["nobody@example.org"], "202") {
		t.Errorf("answers differ or are not 202: %q", answers)
	}
	// Nothing changed yet: a stranger who knows the email locks nobody out.
	if st := e.call(t, "POST", "/api/v1/sessions", "", apitypes.SessionRequest{AccessCode: code}, nil); st != 201 {
		t.Errorf("old code after a recovery request: %d, want 201", st)
	}
	ms, err := e.store.DueMail(ctx, time.Now().Add(time.Hour), 10)
	if err != nil || len(ms) != 1 || ms[0].To != email || ms[0].Kind != store.MailTransactional {
		t.Fatalf("outbox = %+v, %v", ms, err)
	}
	queued := ms[0].Body
	if codeRE.MatchString(queued) {
		t.Errorf("the queued mail holds an access code:\n%s", queued)
	}
	for _, w := range tokenRE.FindAllString(queued, -1) {
		if e.recoveryLinkValid(t, w) {
			t.Errorf("the queued mail holds a usable link token %q:\n%s", w, queued)
		}
	}
	// The sender completes the link.
	sent := mail.ExpandLinks(queued, e.url, e.api.Sign)
	_, link, ok := strings.Cut(sent, e.url)
	link, _, _ = strings.Cut(link, "\n")
	if !ok || !strings.HasPrefix(link, "/account/recover/") || !e.recoveryLinkValid(t, strings.TrimPrefix(link, "/account/recover/")) {
		t.Fatalf("the sent mail has no working link:\n%s", sent)
	}

	v := sitetest.NewBrowser(t, e.url)
	for range 2 { // a scanner's fetch, then the person's
		st, page := v.Get(link)
		if st != 200 || !strings.Contains(page, `id="issue"`) {
			t.Fatalf("link page: %d %s", st, page)
		}
	}
	if st := e.call(t, "POST", "/api/v1/sessions", "", apitypes.SessionRequest{AccessCode: code}, nil); st != 201 {
		t.Errorf("old code after fetching the link: %d, want 201", st)
	}
	st, page := v.Post(link, nil)
	newCode := newCodeRE.FindStringSubmatch(page)
	if st != 200 || newCode == nil {
		t.Fatalf("using the link: %d %s", st, page)
	}
	if st := e.call(t, "POST", "/api/v1/sessions", "", apitypes.SessionRequest{AccessCode: code}, nil); st != 401 {
		t.Errorf("old code after using the link: %d, want 401", st)
	}
	if st := e.call(t, "GET", "/api/v1/account", tok, nil, nil); st != 401 {
		t.Errorf("a session from before the recovery: %d, want 401", st)
	}
	if st := e.call(t, "POST", "/api/v1/sessions", "", apitypes.SessionRequest{AccessCode: newCode[1]}, nil); st != 201 {
		t.Errorf("login with the new code %q: %d", newCode[1], st)
	}
	if st, _ := v.Post(link, nil); st != 404 {
		t.Errorf("using the link twice: %d, want 404", st)
	}
	if st, _ := v.Get(link); st != 404 {
		t.Errorf("the used link's page: %d, want 404", st)
	}
	if strings.Contains(e.logs.String(), email) || strings.Contains(e.logs.String(), newCode[1]) {
		t.Errorf("logs hold the email or the code:\n%s", e.logs)
	}
}

// TestRecoverLinkExpires: an unused link stops working after
// privacy.RecoveryLinkTTL, and the old code still works.
func TestRecoverLinkExpires(t *testing.T) {
	e := newEnv(t, nil)
	code := e.newAccount(t, 30)
	email := "late@example.org"
	if st := e.call(t, "PATCH", "/api/v1/account", e.login(t, code), apitypes.AccountPatch{Email: &email}, nil); st != 200 {
		t.Fatal(st)
	}
	if st := e.call(t, "POST", "/api/v1/account/recover", "", apitypes.RecoverRequest{Email: email}, nil); st != 202 {
		t.Fatal(st)
	}
	ms, _ := e.store.DueMail(context.Background(), time.Now().Add(time.Hour), 10)
	sent := mail.ExpandLinks(ms[0].Body, "", e.api.Sign)
	link := recoverLinkRE.FindString(sent)
	e.now.Add(privacy.RecoveryLinkTTL)
	v := sitetest.NewBrowser(t, e.url)
	if st, _ := v.Get(link); st != 404 {
		t.Errorf("an expired link's page: %d, want 404", st)
	}
	if st, _ := v.Post(link, nil); st != 404 {
		t.Errorf("using an expired link: %d, want 404", st)
	}
	if st := e.call(t, "POST", "/api/v1/sessions", "", apitypes.SessionRequest{AccessCode: code}, nil); st != 201 {
		t.Errorf("old code after the link expired: %d, want 201", st)
	}
}

var (
	codeRE        = regexp.MustCompile(`[0-9]{4} ?[0-9]{4} ?[0-9]{4} ?[0-9]{4}`)
	tokenRE       = regexp.MustCompile(`[A-Za-z0-9_-]{20,}`)
	newCodeRE     = regexp.MustCompile(`<code id="new-code">([0-9 ]+)</code>`)
	recoverLinkRE = regexp.MustCompile(`/account/recover/[A-Za-z0-9_-]+`)
)

// recoveryLinkValid reports whether tok opens a live recovery link.
func (e *env) recoveryLinkValid(t testing.TB, tok string) bool {
	t.Helper()
	_, err := e.store.RecoveryTokenByHash(context.Background(), e.hasher.Token("recover:"+tok), e.now.Now())
	return err == nil
}

// TestSupportAndCounters covers points 6 and 7 over the API.
func TestSupportAndCounters(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	var tk apitypes.TicketCreated
	if st := e.call(t, "POST", "/api/v1/support/tickets", "", apitypes.TicketRequest{Subject: "Hi", Message: "Anonymous question", Email: "anon@example.org"}, &tk); st != 201 {
		t.Fatalf("ticket: %d", st)
	}
	var list []apitypes.TicketView
	if st := e.call(t, "GET", "/api/v1/admin/support", e.admin, nil, &list); st != 200 || len(list) != 1 || list[0].Status != "open" {
		t.Fatalf("admin list: %d %+v", st, list)
	}
	var after apitypes.TicketView
	path := "/api/v1/admin/support/" + itoa(list[0].ID) + "/reply"
	if st := e.call(t, "POST", path, e.admin, apitypes.TicketMessage{Message: "Here is the answer"}, &after); st != 200 || after.Status != "answered" || len(after.Messages) != 2 {
		t.Fatalf("reply: %d %+v", st, after)
	}
	var mine apitypes.TicketView
	if st := e.call(t, "GET", "/api/v1/support/tickets/"+tk.Token, "", nil, &mine); st != 200 || len(mine.Messages) != 2 || !mine.Messages[1].FromOperator {
		t.Fatalf("read by token: %d %+v", st, mine)
	}
	if st := e.call(t, "GET", "/api/v1/support/tickets/wrongtoken", "", nil, nil); st != 404 {
		t.Errorf("wrong token: %d", st)
	}
	ms, _ := e.store.DueMail(ctx, time.Now().Add(time.Hour), 10)
	if len(ms) != 2 || ms[1].To != "anon@example.org" || !strings.Contains(ms[1].Body, "Here is the answer") {
		t.Errorf("notices = %+v; want a receipt and the reply", ms)
	}

	reports := []struct {
		body string
		want int
	}{
		{`{"os_version":"linux 6.1","app_version":"1.2.0"}`, 204},
		{`{"os_version":"Linux 6.1","app_version":"1.2.0"}`, 204},
		{`{"os_version":"windows 11","app_version":"1.2.0"}`, 204},
		{`{"os_version":"linux 192.0.2.7","app_version":"1.2.0"}`, 204}, // digits and dots only: a version
		{`{"os_version":"linux 6.1 user@example.org","app_version":"1.2.0"}`, 400},
		{`{"os_version":"linux","app_version":"id-5f3a9c"}`, 400},
		{`{"os_version":"linux"}`, 400},
	}
	for _, r := range reports {
		if st := e.call(t, "POST", "/api/v1/client-report", "", r.body, nil); st != r.want {
			t.Errorf("report %s: %d, want %d", r.body, st, r.want)
		}
	}
	var stats []apitypes.ClientCount
	if st := e.call(t, "GET", "/api/v1/admin/stats", e.admin, nil, &stats); st != 200 {
		t.Fatal(st)
	}
	got := map[string]int64{}
	for _, c := range stats {
		got[c.OSVersion+"/"+c.AppVersion] = c.Count
		if c.Day != privacy.Day(time.Now()) {
			t.Errorf("count day %q", c.Day)
		}
	}
	if got["linux 6.1/1.2.0"] != 2 || got["windows 11/1.2.0"] != 1 {
		t.Errorf("stats = %v", got)
	}
	if st := e.call(t, "GET", "/api/v1/admin/stats", "", nil, nil); st != 401 {
		t.Errorf("stats without admin token: %d", st)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestPolicyVersions covers point 2: publish, notices, the versions page
// with highlighted differences, and the unsubscribe link.
func TestPolicyVersions(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	for _, em := range []string{"a@example.org", ""} {
		tok := e.login(t, e.newAccount(t, 30))
		if em != "" {
			if st := e.call(t, "PATCH", "/api/v1/account", tok, apitypes.AccountPatch{Email: &em}, nil); st != 200 {
				t.Fatal(st)
			}
		}
	}
	for i, prose := range []string{"# About\n\nFirst text.", "# About\n\nSecond text."} {
		var out apitypes.Published
		if st := e.call(t, "POST", "/api/v1/admin/policy", e.admin, apitypes.PublishRequest{Prose: prose}, &out); st != 201 || out.Version != int64(i+1) || out.Notices != 1 {
			t.Fatalf("publish %d: %d %+v", i, st, out)
		}
	}
	ms, _ := e.store.DueMail(ctx, time.Now().Add(time.Hour), 10)
	if len(ms) != 2 || ms[0].To != "a@example.org" || ms[0].Kind != store.MailTransactional {
		t.Errorf("policy notices = %+v", ms)
	}
	page := get(t, e.url+"/privacy/versions?from=1&to=2")
	for _, want := range []string{`<del class="removed">- First text.</del>`, `<ins class="added">+ Second text.</ins>`} {
		if !strings.Contains(page, want) {
			t.Errorf("versions page lacks %s", want)
		}
	}
	policy := get(t, e.url+"/privacy")
	for _, want := range []string{"Second text.", "Version 2", "client_counters.os_version", "6 months", "When data is erased", "write-ahead log"} {
		if !strings.Contains(policy, want) {
			t.Errorf("policy page lacks %q", want)
		}
	}
}

func get(t testing.TB, u string) string {
	t.Helper()
	return sitetest.GetPage(t, http.DefaultClient, u)
}

// TestAccountPage drives the /account page as a browser does: login by
// access code, cookie attributes, export, erase.
func TestAccountPage(t *testing.T) {
	e := newEnv(t, nil)
	code := e.newAccount(t, 30)
	v := sitetest.NewBrowser(t, e.url)
	if _, page := v.Post("/account/login", url.Values{"access_code": {code}}); !strings.Contains(page, "Download everything held") {
		t.Fatalf("account page after login: %s", page)
	}
	// The Set-Cookie attributes.
	resp := v.Submit("/account/login", url.Values{"access_code": {code}})
	sc := resp.Header.Get("Set-Cookie")
	if !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Strict") || !strings.Contains(sc, "Path=/;") {
		t.Errorf("Set-Cookie = %q", sc)
	}
	st, b := v.Get("/account/export")
	if st != 200 || !strings.Contains(b, `"client_counters"`) {
		t.Errorf("export: %d %s", st, b)
	}
	// Erase without confirmation does nothing; with it, the account goes.
	v.Post("/account/erase", url.Values{})
	if n, _ := e.store.CountAccounts(context.Background()); n != 1 {
		t.Fatalf("accounts after unconfirmed erase: %d", n)
	}
	_, b = v.Post("/account/erase", url.Values{"confirm": {"yes"}})
	if n, _ := e.store.CountAccounts(context.Background()); n != 0 || !strings.Contains(b, "were erased") {
		t.Errorf("accounts after erase: %d; page %s", n, b)
	}
}

// TestRecoverCodePage is the /account page's form for a lost code: the
// same answer whether or not the email is known, and the new code mailed.
func TestRecoverCodePage(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login(t, e.newAccount(t, 30))
	email := "page-owner@example.org"
	if st := e.call(t, "PATCH", "/api/v1/account", tok, apitypes.AccountPatch{Email: &email}, nil); st != 200 {
		t.Fatal(st)
	}
	v := sitetest.NewBrowser(t, e.url)
	where := map[string]string{}
	for _, em := range []string{email, "stranger@example.org", "not an email"} {
		where[em] = v.Submit("/account/recover", url.Values{"email": {em}}).Header.Get("Location")
	}
	if where[email] != "/account?m=recover" || where["stranger@example.org"] != where[email] {
		t.Errorf("answers differ: %q", where)
	}
	if where["not an email"] != "/account?m=bademail" {
		t.Errorf("malformed email answered %q", where["not an email"])
	}
	ms, err := e.store.DueMail(context.Background(), time.Now().Add(time.Hour), 10)
	if err != nil || len(ms) != 1 || ms[0].To != email {
		t.Fatalf("outbox = %+v, %v", ms, err)
	}
}
