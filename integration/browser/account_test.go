package browser

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"veil/integration/harness"
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
	for _, want := range []string{"premium (active)", "not restricted", "Download everything held for your account"} {
		if !strings.Contains(page, want) {
			t.Errorf("account page lacks %q:\n%s", want, page)
		}
	}

	// The old page's button stays visible until the form's answer
	// replaces the page: wait for what only the new page has.
	if err := chromedp.Do(ctx, chromedp.Click("#restrict"), chromedp.WaitVisible(`form[action="/account/restrict"] strong`)); err != nil {
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
		chromedp.Click(`header nav a[href="/support"]`),
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
