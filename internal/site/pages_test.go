package site_test

import (
	"bytes"
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"veil/internal/controlplane"
)

// browser is a visitor's browser on the site: it keeps cookies and posts forms as
// the site's pages do, with the site's Origin and the page's form token.
type browser struct {
	t    testing.TB
	base string
	hc   *http.Client
	csrf string
	// Origin is sent with every post; the site's own by default.
	Origin string
}

func newVisitor(t testing.TB, base string) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: base, Origin: base, hc: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// get fetches a page, following redirects, and keeps its form token.
func (v *browser) get(path string) (int, string) {
	v.t.Helper()
	for range 5 {
		resp, err := v.hc.Get(v.base + path)
		if err != nil {
			v.t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode == http.StatusSeeOther && loc != "" {
			path = loc
			continue
		}
		if m := csrfRE.FindSubmatch(b); m != nil {
			v.csrf = html.UnescapeString(string(m[1]))
		}
		return resp.StatusCode, string(b)
	}
	v.t.Fatalf("GET %s: too many redirects", path)
	return 0, ""
}

// submit posts a form without following the answer's redirect; the form
// token is fetched first if the visitor has none.
func (v *browser) submit(path string, form url.Values) *http.Response {
	v.t.Helper()
	if v.csrf == "" {
		v.get("/support")
	}
	f := url.Values{csrfField: {v.csrf}}
	for k, vs := range form {
		f[k] = vs
	}
	req, err := http.NewRequest("POST", v.base+path, strings.NewReader(f.Encode()))
	if err != nil {
		v.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if v.Origin != "" {
		req.Header.Set("Origin", v.Origin)
	}
	resp, err := v.hc.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp
}

// post sends a form and returns the status and body of the page it leads
// to.
func (v *browser) post(path string, form url.Values) (int, string) {
	v.t.Helper()
	resp := v.submit(path, form)
	if loc := resp.Header.Get("Location"); resp.StatusCode == http.StatusSeeOther && loc != "" {
		return v.get(loc)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// csrfField is the form field of the site's token.
const csrfField = "csrf"

// TestSupportAttach: a visitor logged in on /account who sends the
// support form with "attach" gets the ticket on the account; without the
// box, or without a login, it stays unattached.
func TestSupportAttach(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	code := e.newAccount(t, 30)
	v := newVisitor(t, e.url)
	if st, page := v.post("/account/login", url.Values{"access_code": {code}}); st != 200 || !strings.Contains(page, "Download everything held") {
		t.Fatalf("login: %d %s", st, page)
	}
	if _, page := v.get("/support"); !strings.Contains(page, `name="attach"`) {
		t.Errorf("the logged-in support page offers no attach box:\n%s", page)
	}
	if st, _ := v.post("/support", url.Values{"subject": {"Mine"}, "message": {"attach me"}, "attach": {"1"}}); st != 200 {
		t.Fatalf("support form: %d", st)
	}
	if st, _ := v.post("/support", url.Values{"subject": {"Loose"}, "message": {"do not attach"}}); st != 200 {
		t.Fatalf("support form: %d", st)
	}
	anon := newVisitor(t, e.url)
	if st, page := anon.get("/support/ticket/nosuch"); st != 404 || !strings.Contains(page, `href="/support"`) {
		t.Errorf("an unknown ticket: %d, want the site's 404 page: %s", st, page)
	}
	if _, page := anon.get("/support"); strings.Contains(page, `name="attach"`) {
		t.Errorf("the support page offers attaching to a visitor not logged in")
	}
	if st, _ := anon.post("/support", url.Values{"subject": {"Anon"}, "message": {"who am I"}, "attach": {"1"}}); st != 200 {
		t.Fatalf("anonymous support form: %d", st)
	}

	ts, err := e.store.Tickets(ctx, "")
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

// getPage fetches a page with hc and returns its body; the status must
// be 200.
func getPage(t testing.TB, hc *http.Client, u string) string {
	t.Helper()
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	return string(b)
}

// TestFormGuard: every form of the site is refused without the site's
// own Origin (absent, "null" from a sandboxed frame, another site) or
// without the token of the visitor's cookie, and taken with both.
func TestFormGuard(t *testing.T) {
	e := newEnv(t, nil)
	code := e.newAccount(t, 30)
	var tk struct{ Token string }
	if st := e.call(t, "POST", "/api/v1/support/tickets", "", map[string]string{"subject": "s", "message": "m"}, &tk); st != 201 {
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
	good := newVisitor(t, e.url)
	good.get("/account")
	bad := []struct {
		name   string
		origin string
		token  string
	}{
		{"no Origin", "", good.csrf},
		{"Origin null", "null", good.csrf},
		{"another site", "https://evil.example", good.csrf},
		{"a look-alike host", e.url + ".evil.example", good.csrf},
		{"no token", e.url, ""},
		{"a wrong token", e.url, "AAAA" + good.csrf[4:]},
	}
	for _, f := range forms {
		for _, b := range bad {
			v := *good
			v.Origin, v.csrf = b.origin, b.token
			if b.token == "" {
				v.csrf = "-" // submit fetches a token when it has none
			}
			resp := v.submit(f.path, f.form)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s with %s: %d, want 403", f.path, b.name, resp.StatusCode)
			}
			for _, c := range resp.Cookies() {
				if c.Name == "veil_session" && c.Value != "" {
					t.Errorf("%s with %s opened a session", f.path, b.name)
				}
			}
		}
		if st := good.submit(f.path, f.form).StatusCode; st == http.StatusForbidden || st >= 500 {
			t.Errorf("%s from the site's own page: %d", f.path, st)
		}
	}
}

// TestFormGuardPublicURL: behind a proxy the Host may differ from the
// public address; the public URL's origin is the site's too.
func TestFormGuardPublicURL(t *testing.T) {
	e := newEnv(t, nil)
	e.api.SetPrivacy(controlplane.PrivacyConfig{PublicURL: "https://veil.example/"})
	v := newVisitor(t, e.url)
	v.get("/account")
	for origin, want := range map[string]bool{"https://veil.example": true, "http://veil.example": false, "https://other.example": false} {
		v.Origin = origin
		st := v.submit("/account/login", url.Values{"access_code": {"0000 0000 0000 0000"}}).StatusCode
		if got := st != http.StatusForbidden; got != want {
			t.Errorf("Origin %s: %d", origin, st)
		}
	}
}
