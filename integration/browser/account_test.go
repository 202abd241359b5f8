package browser

import (
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"veil/integration/harness"
	"veil/internal/apitypes"
	"veil/internal/mail"
)

// TestAccountAndPrivacyPages drives the rights a person exercises with
// the access code alone, in a real browser against a whole service: log
// in on /account, restrict processing, and read the policy generated from
// the data inventory on /privacy.
func TestAccountAndPrivacyPages(t *testing.T) {
	ctx := browser(t)
	env := harness.Start(t, harness.Options{})
	code := env.CreateAccount(t, 30)
	base := env.Svc.URL()

	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/account"),
		chromedp.WaitVisible("#access_code"),
		chromedp.SendKeys("#access_code", code),
		chromedp.Click("#login"),
		chromedp.WaitVisible("#restrict"),
	)
	if err != nil {
		t.Fatalf("logging in on /account: %v", err)
	}
	page := texts(t, ctx, "main")[0]
	for _, want := range []string{"Premium (active)", "not restricted", "Download everything held for your account"} {
		if !strings.Contains(page, want) {
			t.Errorf("account page lacks %q:\n%s", want, page)
		}
	}

	// The old page's button stays visible until the form's answer
	// replaces the page: wait for what only the new page has.
	if err := chromedp.Do(ctx, chromedp.Click("#restrict"), chromedp.WaitVisible(`form[action="/account/restrict"] em`)); err != nil {
		t.Fatalf("restricting: %v", err)
	}
	if page := texts(t, ctx, "main")[0]; !strings.Contains(page, "Processing is restricted") {
		t.Errorf("after restricting, the page says:\n%s", page)
	}
	checkPNG(t, screenshot(t, ctx, chromedp.CaptureScreenshot()), 800, 600)

	// The API agrees: the account is restricted.
	acc, err := env.API(loginToken(t, env, code)).Account(t.Context())
	if err != nil || !acc.Restricted {
		t.Errorf("account after the page's restriction: %+v, %v", acc, err)
	}

	// Support, reached by the link every page carries, attaches the
	// ticket to the account logged in.
	err = chromedp.Do(ctx,
		chromedp.Click(`footer a[href="/support"]`),
		chromedp.WaitVisible("#attach"),
		chromedp.SendKeys("#subject", "From the browser"),
		chromedp.SendKeys("#message", "Please attach me."),
		chromedp.Click("#send"),
		chromedp.WaitVisible(`form[action^="/support/ticket/"]`),
	)
	if err != nil {
		t.Fatalf("sending the support form: %v", err)
	}
	if ts, err := env.Svc.Store.Tickets(t.Context(), ""); err != nil || len(ts) != 1 || ts[0].AccountID == 0 {
		t.Errorf("tickets after the logged-in support form: %+v, %v; want one, attached", ts, err)
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/privacy"), chromedp.WaitVisible("#account")); err != nil {
		t.Fatalf("opening /privacy: %v", err)
	}
	policy := texts(t, ctx, "main")[0]
	for _, want := range []string{"6 months", "To provide the VPN you subscribed to", "Devices", "Account page"} {
		if !strings.Contains(policy, want) {
			t.Errorf("privacy page lacks %q", want)
		}
	}
	checkPNG(t, screenshot(t, ctx, chromedp.CaptureScreenshot()), 800, 600)
}

func loginToken(t testing.TB, env *harness.Env, code string) string {
	t.Helper()
	s, err := env.API("").Login(t.Context(), code)
	if err != nil {
		t.Fatal(err)
	}
	return s.Token
}

// TestLoginCSRF: a page of another site cannot log the visitor in to an
// account of its choosing (login CSRF). Its sandboxed frame posts the
// login form to the top window, so the browser sends "Origin: null" and,
// the navigation being top-level, would store the session cookie that
// SameSite alone lets through.
func TestLoginCSRF(t *testing.T) {
	ctx := browser(t)
	env := harness.Start(t, harness.Options{})
	code := env.CreateAccount(t, 30)
	base := env.Svc.URL()

	frame := `<form method="post" action="` + base + `/account/login" target="_top">` +
		`<input name="access_code" value="` + code + `"></form><script>document.forms[0].submit()</script>`
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>cats</title><iframe sandbox="allow-forms allow-scripts allow-top-navigation" srcdoc="%s"></iframe>`,
			html.EscapeString(frame))
	}))
	t.Cleanup(evil.Close)
	// Another site: a name (the browser maps it to loopback), not the
	// service's address.
	_, port, _ := net.SplitHostPort(evil.Listener.Addr().String())
	err := chromedp.Do(ctx,
		chromedp.Navigate("http://v4.veil.test:"+port+"/"),
		chromedp.WaitVisible("main h1"), // the top window has left the page for the service's answer
	)
	if err != nil {
		t.Fatalf("the other site's page: %v", err)
	}
	landed, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(landed, base) {
		t.Fatalf("the frame's form led to %s", landed)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/account"), chromedp.WaitVisible("main h1")); err != nil {
		t.Fatal(err)
	}
	if page := texts(t, ctx, "main")[0]; strings.Contains(page, "Download everything held") || !strings.Contains(page, "Access code") {
		t.Errorf("the other site's form logged the browser in:\n%s", page)
	}
}

// TestRecoverCodePages: the lost-code form on /account, the mailed
// link's page and its button, in a real browser: the new code is shown
// once and opens the account; the old one then no longer does.
func TestRecoverCodePages(t *testing.T) {
	ctx := browser(t)
	env := harness.Start(t, harness.Options{})
	code := env.CreateAccount(t, 30)
	base := env.Svc.URL()
	email := "lost@example.org"
	if err := env.API(loginToken(t, env, code)).Do(t.Context(), http.MethodPatch, "/api/v1/account", apitypes.AccountPatch{Email: &email}, nil); err != nil {
		t.Fatal(err)
	}
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/account"),
		chromedp.SendKeys("#recover_email", email),
		chromedp.Click("#recover"),
		chromedp.WaitVisible(`p.notice`),
	)
	if err != nil {
		t.Fatalf("asking for a recovery link: %v", err)
	}
	ms, err := env.Svc.Store.DueMail(t.Context(), time.Now().Add(time.Hour), 10)
	if err != nil || len(ms) != 1 {
		t.Fatalf("outbox: %+v, %v", ms, err)
	}
	link := regexp.MustCompile(`http://\S+/account/recover/\S+`).FindString(mail.ExpandLinks(ms[0].Body, base, env.Svc.API.Sign))
	if link == "" {
		t.Fatalf("no link in the mail:\n%s", ms[0].Body)
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(link),
		chromedp.Click("#issue"),
		chromedp.WaitVisible("#new-code"),
	)
	if err != nil {
		t.Fatalf("using the link: %v", err)
	}
	newCode := texts(t, ctx, "#new-code")[0]
	if _, err := env.API("").Login(t.Context(), code); err == nil {
		t.Error("the old code still logs in after the link was used")
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/account"),
		chromedp.SendKeys("#access_code", newCode),
		chromedp.Click("#login"),
		chromedp.WaitVisible("#restrict"),
	)
	if err != nil {
		t.Fatalf("logging in with the new code %q: %v", newCode, err)
	}
}
