package controlplane_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
)

// browserClient is a client that keeps cookies, as a browser does.
func browserClient(t testing.TB) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

// postForm sends a form as the site's own page would and returns the
// status and the body of the final answer.
func postForm(t testing.TB, hc *http.Client, base, path string, v url.Values) (int, string) {
	t.Helper()
	resp, err := hc.PostForm(base+path, v)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestSupportAttach: a visitor logged in on /account who sends the
// support form with "attach" gets the ticket on the account; without the
// box, or without a login, it stays unattached.
func TestSupportAttach(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	code := e.newAccount(t, 30)
	hc := browserClient(t)
	if st, page := postForm(t, hc, e.url, "/account/login", url.Values{"access_code": {code}}); st != 200 || !strings.Contains(page, "Download everything held") {
		t.Fatalf("login: %d %s", st, page)
	}
	page := getPage(t, hc, e.url+"/support")
	if !strings.Contains(page, `name="attach"`) {
		t.Errorf("the logged-in support page offers no attach box:\n%s", page)
	}
	if st, _ := postForm(t, hc, e.url, "/support", url.Values{"subject": {"Mine"}, "message": {"attach me"}, "attach": {"1"}}); st != 200 {
		t.Fatalf("support form: %d", st)
	}
	if st, _ := postForm(t, hc, e.url, "/support", url.Values{"subject": {"Loose"}, "message": {"do not attach"}}); st != 200 {
		t.Fatalf("support form: %d", st)
	}
	anon := browserClient(t)
	if page := getPage(t, anon, e.url+"/support"); strings.Contains(page, `name="attach"`) {
		t.Errorf("the support page offers attaching to a visitor not logged in")
	}
	if st, _ := postForm(t, anon, e.url, "/support", url.Values{"subject": {"Anon"}, "message": {"who am I"}, "attach": {"1"}}); st != 200 {
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
