package controlplane_test

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"

	"veil/internal/apitypes"
	"veil/internal/billing"
	"veil/internal/config"
	"veil/internal/controlplane"
	"veil/internal/pow"
	"veil/internal/store"
	"veil/internal/throttle"
)

// business configures a server with cheap proofs of work and a small
// sign-up allowance.
func business(signups int) func(*controlplane.Config) {
	return func(c *controlplane.Config) {
		c.Business = controlplane.BusinessConfig{
			Pow:              pow.New(8, 10*time.Minute),
			Signups:          throttle.New(signups, time.Hour),
			Products:         testProducts,
			StripeLinks:      map[string]billing.StripeLink{"premium-30": {ID: "plink_1", URL: "https://buy.stripe.com/test_1"}},
			ReminderDays:     3,
			AffiliatePercent: 20,
		}
		c.FreePlan = config.FreePlan{Enabled: true, Locations: []string{"de-fra"}, Devices: 1, BandwidthBps: 2_000_000}
		c.Stripe = &billing.Stripe{Secret: stripeSecret, Products: testProducts,
			Links: map[string]billing.StripeLink{"premium-30": {ID: "plink_1", URL: "https://buy.stripe.com/test_1"}}}
	}
}

// signup solves a challenge and signs up, returning the status and answer.
func (e *env) signup(t testing.TB, referral string) (int, apitypes.AccountCreated) {
	t.Helper()
	return e.signupWith(t, apitypes.SignupRequest{Referral: referral})
}

// signupWith signs up with req, its challenge and nonce filled in.
func (e *env) signupWith(t testing.TB, req apitypes.SignupRequest) (int, apitypes.AccountCreated) {
	t.Helper()
	var c apitypes.SignupChallenge
	if st := e.call(t, "GET", "/api/v1/accounts/challenge", "", nil, &c); st != 200 {
		t.Fatalf("challenge: %d", st)
	}
	nonce, ok := pow.Solve(c.Challenge, c.Bits, 1<<24)
	if !ok {
		t.Fatal("no solution")
	}
	var out apitypes.AccountCreated
	req.Challenge, req.Nonce = c.Challenge, nonce
	st := e.call(t, "POST", "/api/v1/accounts", "", req, &out)
	return st, out
}

// TestSignup: a solved challenge makes an account with the trial and no
// personal data, whose code logs in; a replayed or unsolved challenge is
// refused and makes nothing.
func TestSignup(t *testing.T) {
	e := newEnv(t, nil, business(100))
	st, out := e.signup(t, "")
	if st != 201 || out.AccessCode == "" || out.Account.TrialUntil == nil || out.Account.Email != "" {
		t.Fatalf("signup: %d %+v", st, out)
	}
	tok := e.login(t, out.AccessCode)
	var acc apitypes.Account
	if e.call(t, "GET", "/api/v1/account", tok, nil, &acc); !acc.Active || acc.Plan != "free" {
		t.Fatalf("new account %+v", acc)
	}
	if len(acc.PayLinks) != 1 || acc.PayLinks[0].URL != "https://buy.stripe.com/test_1?client_reference_id="+acc.PaymentReference {
		t.Fatalf("pay links %+v", acc.PayLinks)
	}

	var c apitypes.SignupChallenge
	e.call(t, "GET", "/api/v1/accounts/challenge", "", nil, &c)
	nonce, _ := pow.Solve(c.Challenge, c.Bits, 1<<24)
	wrong := "x"
	for pow.LeadingZeros(c.Challenge, wrong) >= c.Bits {
		wrong += "x"
	}
	for _, tt := range []struct {
		name string
		req  apitypes.SignupRequest
		want int
	}{
		{"unsolved", apitypes.SignupRequest{Challenge: c.Challenge, Nonce: wrong}, 400},
		{"forged", apitypes.SignupRequest{Challenge: strings.Replace(c.Challenge, "v1.8.", "v1.0.", 1), Nonce: "0"}, 400},
		{"solved", apitypes.SignupRequest{Challenge: c.Challenge, Nonce: nonce}, 201},
		{"replayed", apitypes.SignupRequest{Challenge: c.Challenge, Nonce: nonce}, 400},
		{"unknown referral", apitypes.SignupRequest{Challenge: "", Nonce: ""}, 400},
	} {
		if st := e.call(t, "POST", "/api/v1/accounts", "", tt.req, nil); st != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, st, tt.want)
		}
	}
	if st, _ := e.signup(t, "nosuchcode"); st != 400 {
		t.Errorf("unknown referral: %d, want 400", st)
	}
	if n, _ := e.store.CountAccounts(t.Context()); n != 2 {
		t.Fatalf("%d accounts, want 2", n)
	}
	// Without a trial the account is left unpaid (the free plan's).
	e2 := newEnv(t, nil, business(100), func(c *controlplane.Config) { c.TrialDays = 0 })
	if st, out := e2.signup(t, ""); st != 201 || out.Account.TrialUntil != nil || out.Account.PaidUntil != nil {
		t.Fatalf("signup without trial: %d %+v", st, out.Account)
	}
}

// TestSignupFlood: a script that solves every challenge still gets only
// the visitor's allowance of accounts; the rest are refused with 429.
func TestSignupFlood(t *testing.T) {
	const allowance, tries = 5, 40
	e := newEnv(t, nil, business(allowance))
	made, refused := 0, 0
	for range tries {
		switch st, _ := e.signup(t, ""); st {
		case 201:
			made++
		case 429:
			refused++
		default:
			t.Fatalf("signup: %d", st)
		}
	}
	if made != allowance || refused != tries-allowance {
		t.Fatalf("%d made, %d refused, want %d and %d", made, refused, allowance, tries-allowance)
	}
	if n, _ := e.store.CountAccounts(t.Context()); n != allowance {
		t.Fatalf("%d accounts stored, want %d", n, allowance)
	}
}

// TestPlans: the products, the trial and the free plan, as JSON and on
// the pricing page.
func TestPlans(t *testing.T) {
	e := newEnv(t, nil, business(10))
	var p apitypes.Plans
	if st := e.call(t, "GET", "/api/v1/plans", "", nil, &p); st != 200 {
		t.Fatalf("plans: %d", st)
	}
	if len(p.Products) != 1 || p.Products[0].Name != "Premium, 30 days" || p.Products[0].Prices[0].Amount != "5.00" ||
		p.Products[0].Plan != "premium" || p.TrialDays != 7 || !p.FreePlan.Enabled || p.FreePlan.BandwidthKbps != 2000 {
		t.Fatalf("plans %+v", p)
	}
	resp, err := http.Get(e.url + "/pricing")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"Premium, 30 days", "5.00 EUR", "30 days", "de-fra", "2000 kbit/s"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("pricing page lacks %q", want)
		}
	}
}

// TestVouchers: a batch's codes each work once, also when redeemed at
// the same time; wrong codes are throttled; each redemption is a payment
// with a receipt, and the account page offers its Stripe links.
func TestVouchers(t *testing.T) {
	e := newEnv(t, nil, business(10))
	var batch apitypes.VoucherBatch
	if st := e.call(t, "POST", "/api/v1/admin/vouchers", e.admin, apitypes.VoucherCreateRequest{Days: 30, Count: 3}, &batch); st != 201 || len(batch.Codes) != 3 {
		t.Fatalf("create: %d %+v", st, batch)
	}
	if st := e.call(t, "POST", "/api/v1/admin/vouchers", e.admin, apitypes.VoucherCreateRequest{Days: 30, Count: 0}, nil); st != 400 {
		t.Errorf("count 0: %d", st)
	}
	tok := e.login(t, e.newAccount(t, 0))
	if st := e.call(t, "PATCH", "/api/v1/account", tok, apitypes.AccountPatch{Email: ptr("me@example.org")}, nil); st != 200 {
		t.Fatal("setting email")
	}
	other := e.login(t, e.newAccount(t, 0))

	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i, tk := range []string{tok, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = e.call(t, "POST", "/api/v1/vouchers/redeem", tk, apitypes.VoucherRedeemRequest{Code: strings.ToLower(batch.Codes[0])}, nil)
		}()
	}
	wg.Wait()
	if !(codes[0] == 200 && codes[1] == 400 || codes[0] == 400 && codes[1] == 200) {
		t.Fatalf("one code redeemed twice at once: %v", codes)
	}
	var red apitypes.VoucherRedeemed
	if st := e.call(t, "POST", "/api/v1/vouchers/redeem", tok, apitypes.VoucherRedeemRequest{Code: batch.Codes[1]}, &red); st != 200 || red.Days != 30 {
		t.Fatalf("redeem: %d %+v", st, red)
	}
	recs, _ := e.store.BillingRecords(t.Context(), time.Time{}, time.Time{})
	if len(recs) != 2 || recs[0].Processor != "voucher" || recs[0].Days != 30 {
		t.Fatalf("records %+v", recs)
	}
	mails, wantMails := 0, 1
	if recs[0].AccountID == recs[1].AccountID {
		wantMails = 2 // both redeemed by the account with an email
	}
	accs, _ := e.store.AccountsWithEmail(t.Context())
	for _, a := range accs {
		ms, _ := e.store.AccountMail(t.Context(), a.ID)
		for _, m := range ms {
			if strings.Contains(m.Subject, "receipt") && strings.Contains(m.Body, "30 days") {
				mails++
			}
		}
	}
	if mails != wantMails {
		t.Fatalf("%d receipts for the account with an email, want %d", mails, wantMails)
	}
	// Wrong codes: ten, then even the right one is refused for a while.
	for range 10 {
		e.call(t, "POST", "/api/v1/vouchers/redeem", other, apitypes.VoucherRedeemRequest{Code: "AAAA-AAAA-AAAA-AAAA-AAAA"}, nil)
	}
	if st := e.call(t, "POST", "/api/v1/vouchers/redeem", other, apitypes.VoucherRedeemRequest{Code: batch.Codes[2]}, nil); st != 429 {
		t.Fatalf("after 10 wrong codes: %d, want 429", st)
	}
}

func ptr[T any](v T) *T { return &v }

// TestAffiliate: an account joins, its link leads to sign-up with the
// code, a referred account's payment credits the share once and its
// refund takes it back; the affiliate sees numbers only; the operator
// records a payout.
func TestAffiliate(t *testing.T) {
	e := newEnv(t, nil, business(10))
	aff := e.login(t, e.newAccount(t, 0))
	var a apitypes.Affiliate
	if st := e.call(t, "POST", "/api/v1/affiliate", aff, nil, &a); st != 200 || a.Code == "" || !strings.HasSuffix(a.Link, "/r/"+a.Code) {
		t.Fatalf("join: %d %+v", st, a)
	}
	var again apitypes.Affiliate
	if e.call(t, "POST", "/api/v1/affiliate", aff, nil, &again); again.Code != a.Code {
		t.Fatal("joining twice changed the code")
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(e.url + "/r/" + a.Code)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); loc != "/signup?ref="+a.Code || len(resp.Cookies()) != 0 {
		t.Fatalf("referral link: %s, cookies %v", loc, resp.Cookies())
	}
	st, out := e.signup(t, a.Code)
	if st != 201 {
		t.Fatalf("referred signup: %d", st)
	}
	send := func(body []byte) {
		sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: stripeSecret, Timestamp: time.Now()})
		if st, res := e.post(t, "/api/v1/billing/stripe", "Stripe-Signature", sp.Header, body); st != 200 {
			t.Fatalf("stripe: %d %v", st, res)
		}
	}
	// Paid through the Payment Link: the product comes from the link.
	cs := checkoutSession(out.Account.PaymentReference, "pi_aff")
	delete(cs, "metadata")
	cs["payment_link"] = "plink_1"
	paid := stripeEvent(t, "evt_a1", stripe.EventTypeCheckoutSessionCompleted, cs)
	send(paid)
	send(paid)
	e.call(t, "GET", "/api/v1/affiliate", aff, nil, &a)
	if a.Signups != 1 || a.Payments != 1 || len(a.Balances) != 1 || a.Balances[0].Amount != "1.00" || a.Balances[0].Currency != "EUR" {
		t.Fatalf("after a payment: %+v", a)
	}
	send(stripeEvent(t, "evt_a2", stripe.EventTypeChargeRefunded, charge("pi_aff", true)))
	send(stripeEvent(t, "evt_a3", stripe.EventTypeChargeRefunded, charge("pi_aff", true)))
	e.call(t, "GET", "/api/v1/affiliate", aff, nil, &a)
	if a.Balances[0].AmountCents != 0 {
		t.Fatalf("after the refund: %+v", a)
	}
	send(stripeEvent(t, "evt_a4", stripe.EventTypeCheckoutSessionCompleted, checkoutSession(out.Account.PaymentReference, "pi_aff2")))
	if st := e.call(t, "POST", "/api/v1/admin/affiliates/"+a.Code+"/payouts", e.admin, apitypes.AffiliatePayoutRequest{Amount: "0.40", Currency: "EUR"}, &a); st != 200 || a.Balances[0].Amount != "0.60" {
		t.Fatalf("payout: %d %+v", st, a)
	}
	var list []apitypes.Affiliate
	if e.call(t, "GET", "/api/v1/admin/affiliates", e.admin, nil, &list); len(list) != 1 || list[0].Payments != 2 {
		t.Fatalf("admin list %+v", list)
	}
	// Erasing the referred account detaches the referral: the count stays.
	tok := e.login(t, out.AccessCode)
	if st := e.call(t, "DELETE", "/api/v1/account", tok, nil, nil); st != 204 {
		t.Fatalf("erase: %d", st)
	}
	e.call(t, "GET", "/api/v1/affiliate", aff, nil, &a)
	if a.Signups != 1 {
		t.Fatalf("after erasure: %+v", a)
	}
}

// TestExpiryReminder: one reminder per paid period, N days before its end.
func TestExpiryReminder(t *testing.T) {
	e := newEnv(t, nil, business(10))
	tok := e.login(t, e.newAccount(t, 5))
	e.call(t, "PATCH", "/api/v1/account", tok, apitypes.AccountPatch{Email: ptr("me@example.org")}, nil)
	reminders := func() int {
		accs, _ := e.store.AccountsWithEmail(t.Context())
		ms, _ := e.store.AccountMail(t.Context(), accs[0].ID)
		n := 0
		for _, m := range ms {
			if m.Kind == store.MailTransactional && strings.Contains(m.Subject, "paid time ends") {
				n++
			}
		}
		return n
	}
	if n, _ := e.api.SendReminders(t.Context(), e.now.Now()); n != 0 || reminders() != 0 {
		t.Fatal("a reminder 5 days before the end")
	}
	at := e.now.Now().Add(3 * 24 * time.Hour)
	for range 2 {
		e.api.SendReminders(t.Context(), at)
	}
	if reminders() != 1 {
		t.Fatalf("%d reminders, want 1", reminders())
	}
	var batch apitypes.VoucherBatch
	e.call(t, "POST", "/api/v1/admin/vouchers", e.admin, apitypes.VoucherCreateRequest{Days: 30, Count: 1}, &batch)
	e.call(t, "POST", "/api/v1/vouchers/redeem", tok, apitypes.VoucherRedeemRequest{Code: batch.Codes[0]}, nil)
	e.api.SendReminders(t.Context(), at.Add(30*24*time.Hour))
	if reminders() != 2 {
		t.Fatalf("%d reminders after a new paid period, want 2", reminders())
	}
}
