package site_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"veil/internal/controlplane"
	"veil/internal/site/sitetest"
)

// TestSupportAttach: a visitor logged in on /account who sends the
// support form with "attach" gets the ticket on the account; without the
// box, or without a login, it stays unattached.
func TestSupportAttach(t *testing.T) {
	e := sitetest.New(t)
	ctx := context.Background()
	code := e.NewAccount(t, 30)
	v := sitetest.NewBrowser(t, e.URL)
	if st, page := v.Post("/account/login", url.Values{"access_code": {code}}); st != 200 || !strings.Contains(page, "Download everything held") {
		t.Fatalf("login: %d %s", st, page)
	}
	if _, page := v.Get("/support"); !strings.Contains(page, `name="attach"`) {
		t.Errorf("the logged-in support page offers no attach box:\n%s", page)
	}
	if st, _ := v.Post("/support", url.Values{"subject": {"Mine"}, "message": {"attach me"}, "attach": {"1"}}); st != 200 {
		t.Fatalf("support form: %d", st)
	}
	if st, _ := v.Post("/support", url.Values{"subject": {"Loose"}, "message": {"do not attach"}}); st != 200 {
		t.Fatalf("support form: %d", st)
	}
	anon := sitetest.NewBrowser(t, e.URL)
	if st, page := anon.Get("/support/ticket/nosuch"); st != 404 || !strings.Contains(page, `href="/support"`) {
		t.Errorf("an unknown ticket: %d, want the site's 404 page: %s", st, page)
	}
	if _, page := anon.Get("/support"); strings.Contains(page, `name="attach"`) {
		t.Errorf("the support page offers attaching to a visitor not logged in")
	}
	if st, _ := anon.Post("/support", url.Values{"subject": {"Anon"}, "message": {"who am I"}, "attach": {"1"}}); st != 200 {
		t.Fatalf("anonymous support form: %d", st)
	}

	ts, err := e.Store.Tickets(ctx, "")
	if err != nil || len(ts) != 3 {
		t.Fatalf("tickets = %+v, %v", ts, err)
	}
	attached := map[string]bool{}
	for _, tk := range ts {
		attached[tk.Subject] = tk.AccountID != 0
	}
	if !attached["Mine"] || attached["Loose"] || attached["Anon"] {
		t.Errorf("attached = %v, want only Mine", attached)
	}
}

// TestFormGuard: every form of the site is refused without the site's
// own Origin (absent, "null" from a sandboxed frame, another site) or
// without the token of the visitor's cookie, and taken with both.
func TestFormGuard(t *testing.T) {
	e := sitetest.New(t)
	code := e.NewAccount(t, 30)
	var tk struct{ Token string }
	if st := e.Call(t, "POST", "/api/v1/support/tickets", "", map[string]string{"subject": "s", "message": "m"}, &tk); st != 201 {
		t.Fatalf("ticket: %d", st)
	}
	forms := []struct {
		path string
		form url.Values
	}{
		{"/account/login", url.Values{"access_code": {code}}},
		{"/account/email", url.Values{"email": {"guard@example.org"}}},
		{"/account/restrict", url.Values{"on": {"1"}}},
		{"/account/marketing", url.Values{"on": {"1"}}},
		{"/support", url.Values{"subject": {"s"}, "message": {"m"}, "attach": {"1"}}},
		{"/support/ticket/" + tk.Token, url.Values{"message": {"more"}}},
		{"/account/recover", url.Values{"email": {"guard@example.org"}}},
		{"/account/erase", url.Values{}},
		{"/account/logout", url.Values{}},
	}
	good := sitetest.NewBrowser(t, e.URL)
	good.Get("/account")
	bad := []struct {
		name   string
		origin string
		token  string
	}{
		{"no Origin", "", good.CSRF},
		{"Origin null", "null", good.CSRF},
		{"another site", "https://evil.example", good.CSRF},
		{"a look-alike host", e.URL + ".evil.example", good.CSRF},
		{"no token", e.URL, ""},
		{"a wrong token", e.URL, "AAAA" + good.CSRF[4:]},
	}
	for _, f := range forms {
		for _, b := range bad {
			v := *good
			v.Origin, v.CSRF = b.origin, b.token
			if b.token == "" {
				v.CSRF = "-" // submit fetches a token when it has none
			}
			resp := v.Submit(f.path, f.form)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s with %s: %d, want 403", f.path, b.name, resp.StatusCode)
			}
			for _, c := range resp.Cookies() {
				if c.Name == "veil_session" && c.Value != "" {
					t.Errorf("%s with %s opened a session", f.path, b.name)
				}
			}
		}
		if st := good.Submit(f.path, f.form).StatusCode; st == http.StatusForbidden || st >= 500 {
			t.Errorf("%s from the site's own page: %d", f.path, st)
		}
	}
}

// TestFormGuardPublicURL: behind a proxy the Host may differ from the
// public address; the public URL's origin is the site's too.
func TestFormGuardPublicURL(t *testing.T) {
	e := sitetest.New(t)
	e.API.SetPrivacy(controlplane.PrivacyConfig{PublicURL: "https://veil.example/"})
	v := sitetest.NewBrowser(t, e.URL)
	v.Get("/account")
	for origin, want := range map[string]bool{"https://veil.example": true, "http://veil.example": false, "https://other.example": false} {
		v.Origin = origin
		st := v.Submit("/account/login", url.Values{"access_code": {"0000 0000 0000 0000"}}).StatusCode
		if got := st != http.StatusForbidden; got != want {
			t.Errorf("Origin %s: %d", origin, st)
		}
	}
}
