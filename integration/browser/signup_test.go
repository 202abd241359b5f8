package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"

	"veil/integration/harness"
	"veil/internal/apitypes"
	"veil/internal/config"
)

const testStripeSecret = "whsec_browser_test_0123456789"

// testProcessor stands in for Stripe's payment page: it shows a Pay
// button for the client_reference_id in its URL, and on a click sends
// the control plane the checkout.session.completed event Stripe would,
// signed with stripe-go's test helper, then sends the browser back.
func testProcessor(t *testing.T, control func() string) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /pay", func(w http.ResponseWriter, r *http.Request) {
		ref := r.URL.Query().Get("client_reference_id")
		fmt.Fprintf(w, `<!doctype html><title>Test processor</title><form method="post" action="/pay"><input type="hidden" name="ref" value="%s"><button id="stripe-pay">Pay 5.00 EUR</button></form>`, html.EscapeString(ref))
	})
	mux.HandleFunc("POST /pay", func(w http.ResponseWriter, r *http.Request) {
		ref := r.FormValue("ref")
		ev := map[string]any{"id": "evt_browser", "object": "event", "api_version": stripe.APIVersion,
			"type": stripe.EventTypeCheckoutSessionCompleted, "created": time.Now().Unix(),
			"data": map[string]any{"object": map[string]any{"id": "cs_browser", "object": "checkout.session",
				"client_reference_id": ref, "payment_intent": "pi_browser", "payment_status": "paid",
				"amount_total": 500, "currency": "eur", "payment_link": "plink_browser"}}}
		body, _ := json.Marshal(ev)
		sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: testStripeSecret, Timestamp: time.Now()})
		req, _ := http.NewRequestWithContext(r.Context(), "POST", control()+"/api/v1/billing/stripe", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Stripe-Signature", sp.Header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("the test processor's event: %v %v", resp, err)
			http.Error(w, "event refused", 500)
			return
		}
		resp.Body.Close()
		http.Redirect(w, r, control()+"/account", http.StatusSeeOther)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestVisitorPath walks what a new customer does: land on /, open the
// pricing, get an access code (the page solves the proof of work), pay
// through the processor's page, see the paid time on /account, redeem a
// voucher and join the affiliate program.
func TestVisitorPath(t *testing.T) {
	ctx := browserFor(t, 3*time.Minute)
	var base string
	proc := testProcessor(t, func() string { return base })
	env := harness.Start(t, harness.Options{Config: func(c *config.Config) {
		c.SignupPowBits = 10
		c.Products = []string{"premium-30=30:5.00 EUR/6.00 USD:premium:Premium month"}
		c.StripeWebhookSecret = testStripeSecret
		c.StripeLinks = []string{"premium-30=plink_browser:" + proc.URL + "/pay"}
	}})
	base = env.Svc.URL()

	var code string
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.Click(`header nav.wide a[href="/pricing"]`),
		chromedp.WaitVisible("#products"),
	)
	if err != nil {
		t.Fatalf("opening the pricing: %v", err)
	}
	if page := texts(t, ctx, "main")[0]; !strings.Contains(page, "Premium month") || !strings.Contains(page, "6.00 USD") {
		t.Errorf("pricing page:\n%s", page)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(`header a.cta[href="/signup"]`),
		chromedp.WaitEnabled("#get-code"),
		chromedp.Click("#get-code"),
		chromedp.WaitVisible("#access-code"),
	)
	if err != nil {
		t.Fatalf("getting an access code: %v", err)
	}
	code = texts(t, ctx, "#access-code")[0]
	if len(strings.ReplaceAll(code, " ", "")) != 16 {
		t.Fatalf("access code %q", code)
	}
	if w := texts(t, ctx, "#code-warning")[0]; !strings.Contains(w, "shown only this once") {
		t.Errorf("warning: %q", w)
	}
	err = chromedp.Do(ctx,
		chromedp.Click("#open-account"),
		chromedp.WaitVisible("#redeem"),
		chromedp.Click(`a.paylink[data-product="premium-30"]`),
		chromedp.WaitVisible("#stripe-pay"),
		chromedp.Click("#stripe-pay"),
		chromedp.WaitVisible("#redeem"),
	)
	if err != nil {
		t.Fatalf("paying: %v", err)
	}
	want := time.Now().UTC().AddDate(0, 0, 30).Format(time.DateOnly)
	if page := texts(t, ctx, "main")[0]; !strings.Contains(page, "Paid until") || !strings.Contains(page, want) {
		t.Errorf("account page after paying lacks paid until %s:\n%s", want, page)
	}

	var batch apitypes.VoucherBatch
	if err := env.API(env.Svc.AdminToken).Do(context.Background(), "POST", "/api/v1/admin/vouchers",
		apitypes.VoucherCreateRequest{Days: 30, Count: 1}, &batch); err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx,
		chromedp.SendKeys("#voucher", batch.Codes[0]),
		chromedp.Click("#redeem"),
		chromedp.WaitVisible(`p.notice`),
	)
	if err != nil {
		t.Fatalf("redeeming: %v", err)
	}
	want = time.Now().UTC().AddDate(0, 0, 60).Format(time.DateOnly)
	if page := texts(t, ctx, "main")[0]; !strings.Contains(page, "Voucher redeemed") || !strings.Contains(page, want) {
		t.Errorf("account page after the voucher lacks paid until %s:\n%s", want, page)
	}
	var link string
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/affiliate"),
		chromedp.WaitVisible("#join-affiliate"),
		chromedp.Click("#join-affiliate"),
		chromedp.WaitVisible("#referral-link"),
	)
	if err != nil {
		t.Fatalf("joining the affiliate program: %v", err)
	}
	link = texts(t, ctx, "#referral-link")[0]
	if !strings.Contains(link, "/r/") {
		t.Errorf("referral link %q", link)
	}
	// The link leads to sign-up with the code filled in. (Its host is
	// public_url's, which the harness leaves at the unbound port 0.)
	_, path, _ := strings.Cut(link, "/r/")
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/r/"+path), chromedp.WaitVisible("#referral")); err != nil {
		t.Fatal(err)
	}
	ref, err := chromedp.Run(ctx, chromedp.Value("#referral"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(link, "/r/"+ref) {
		t.Errorf("sign-up from %s has referral %q", link, ref)
	}
	checkPNG(t, screenshot(t, ctx, chromedp.CaptureScreenshot()), 800, 600)
}

// TestSignupLanguage: an access code got on the Chinese sign-up page
// makes an account whose mail is in Chinese: the page's script sends the
// page's language with the sign-up.
func TestSignupLanguage(t *testing.T) {
	ctx := browserFor(t, time.Minute)
	env := harness.Start(t, harness.Options{Config: func(c *config.Config) { c.SignupPowBits = 10 }})
	err := chromedp.Do(ctx,
		chromedp.Navigate(env.Svc.URL()+"/zh/signup"),
		chromedp.WaitVisible("#get-code"),
		chromedp.Click("#get-code"),
		chromedp.WaitVisible("#access-code"),
	)
	if err != nil {
		t.Fatalf("getting an access code: %v", err)
	}
	code := texts(t, ctx, "#access-code")[0]
	var sess apitypes.Session
	if err := env.API("").Do(context.Background(), "POST", "/api/v1/sessions", apitypes.SessionRequest{AccessCode: code}, &sess); err != nil {
		t.Fatal(err)
	}
	var acc apitypes.Account
	if err := env.API(sess.Token).Do(context.Background(), "GET", "/api/v1/account", nil, &acc); err != nil {
		t.Fatal(err)
	}
	if acc.Lang != "zh" {
		t.Errorf("an account signed up on /zh/signup has mail language %q, want zh", acc.Lang)
	}
}
