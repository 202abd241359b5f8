package controlplane_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"

	"veil/internal/apitypes"
	"veil/internal/billing"
	"veil/internal/billing/btcpaytest"
	"veil/internal/controlplane"
)

var testProducts = billing.Products{"premium-30": {ID: "premium-30", Name: "Premium, 30 days", Days: 30, Plan: "premium", Prices: []billing.Price{{AmountCents: 500, Currency: "EUR"}}}}

const stripeSecret = "whsec_test_0123456789abcdef"

// post sends body to a processor's endpoint with one signature header.
func (e *env) post(t *testing.T, path, header, sig string, body []byte) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", e.url+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if sig != "" {
		req.Header.Set(header, sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// paidUntil is the account's paid time, or the zero time.
func (e *env) paidUntil(t *testing.T, tok string) time.Time {
	t.Helper()
	var acc apitypes.Account
	if st := e.call(t, "GET", "/api/v1/account", tok, nil, &acc); st != 200 {
		t.Fatalf("reading account: %d", st)
	}
	if acc.PaidUntil == nil {
		return time.Time{}
	}
	return *acc.PaidUntil
}

// stripeEvent builds a Stripe event of type typ about object, as Stripe
// sends it.
func stripeEvent(t *testing.T, id string, typ stripe.EventType, object map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"id": id, "object": "event", "api_version": stripe.APIVersion,
		"type": typ, "created": time.Now().Unix(), "data": map[string]any{"object": object}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkoutSession(ref, intent string) map[string]any {
	return map[string]any{"id": "cs_" + intent, "object": "checkout.session", "client_reference_id": ref,
		"payment_intent": intent, "payment_status": "paid", "amount_total": 500, "currency": "eur",
		"metadata": map[string]string{"product": "premium-30"}}
}

func charge(intent string, refunded bool) map[string]any {
	return map[string]any{"id": "ch_" + intent, "object": "charge", "payment_intent": intent,
		"refunded": refunded, "amount": 500, "amount_refunded": 500, "currency": "eur"}
}

// TestStripeWebhook: Stripe's own events, signed by its library, pay for
// the account their client_reference_id names, once; a full refund takes
// the time back, also when it comes first; bad or old signatures change
// nothing.
func TestStripeWebhook(t *testing.T) {
	e := newEnv(t, nil, func(c *controlplane.Config) {
		c.Stripe = &billing.Stripe{Secret: stripeSecret, Products: testProducts}
	})
	tok := e.login(t, e.newAccount(t, 0))
	var acc apitypes.Account
	e.call(t, "GET", "/api/v1/account", tok, nil, &acc)
	before := e.paidUntil(t, tok)
	send := func(body []byte, secret string, at time.Time) (int, map[string]any) {
		sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: at})
		return e.post(t, "/api/v1/billing/stripe", "Stripe-Signature", sp.Header, body)
	}
	// BTCPay is not set up here: its endpoints do not exist.
	if st, _ := e.post(t, "/api/v1/billing/btcpay", "BTCPay-Sig", "sha256=00", []byte(`{}`)); st != 404 {
		t.Errorf("btcpay webhook with BTCPay off: %d, want 404", st)
	}
	if st := e.call(t, "POST", "/api/v1/billing/btcpay/invoice", tok, apitypes.InvoiceRequest{Product: "premium-30"}, nil); st != 404 {
		t.Errorf("btcpay invoice with BTCPay off: %d, want 404", st)
	}
	paid := stripeEvent(t, "evt_1", stripe.EventTypeCheckoutSessionCompleted, checkoutSession(acc.PaymentReference, "pi_1"))

	for name, c := range map[string]struct {
		secret string
		at     time.Time
	}{
		"wrong secret": {"whsec_another_0123456789", time.Now()},
		"too old":      {stripeSecret, time.Now().Add(-6 * time.Minute)},
	} {
		if st, _ := send(paid, c.secret, c.at); st != 401 {
			t.Errorf("%s: %d, want 401", name, st)
		}
	}
	if st, _ := e.post(t, "/api/v1/billing/stripe", "Stripe-Signature", "", paid); st != 401 {
		t.Errorf("unsigned: %d, want 401", st)
	}
	unknown := checkoutSession(acc.PaymentReference, "pi_9")
	unknown["metadata"] = map[string]string{"product": "gold-999"}
	if st, _ := send(stripeEvent(t, "evt_9", stripe.EventTypeCheckoutSessionCompleted, unknown), stripeSecret, time.Now()); st != 400 {
		t.Errorf("unknown product: %d, want 400", st)
	}
	if got := e.paidUntil(t, tok); !got.Equal(before) {
		t.Fatalf("refused events moved the paid time to %v", got)
	}

	for i, want := range []bool{true, false} {
		if st, out := send(paid, stripeSecret, time.Now()); st != 200 || out["applied"] != want {
			t.Fatalf("payment %d: %d %v, want applied=%v", i+1, st, out, want)
		}
	}
	want := e.now.Now().AddDate(0, 0, 30).Truncate(time.Microsecond)
	if got := e.paidUntil(t, tok); !got.Equal(want) {
		t.Fatalf("paid until %v, want %v (30 days, once)", got, want)
	}
	recs, _ := e.store.BillingRecords(t.Context(), time.Time{}, time.Time{})
	if len(recs) != 1 || recs[0].Processor != "stripe" || recs[0].Reference != "pi_1" || recs[0].AmountCents != 500 ||
		recs[0].Currency != "EUR" || recs[0].Days != 30 || recs[0].AccountID == 0 {
		t.Fatalf("records %+v", recs)
	}

	// A partial refund keeps the time; the full refund takes it back.
	if st, out := send(stripeEvent(t, "evt_2", stripe.EventTypeChargeRefunded, charge("pi_1", false)), stripeSecret, time.Now()); st != 200 || out["ignored"] != true {
		t.Fatalf("partial refund: %d %v", st, out)
	}
	if st, out := send(stripeEvent(t, "evt_3", stripe.EventTypeChargeRefunded, charge("pi_1", true)), stripeSecret, time.Now()); st != 200 || out["applied"] != true {
		t.Fatalf("refund: %d %v", st, out)
	}
	if got := e.paidUntil(t, tok); got.After(e.now.Now()) {
		t.Fatalf("after the refund, paid until %v", got)
	}

	// A refund before its payment: the payment then buys nothing.
	if st, out := send(stripeEvent(t, "evt_4", stripe.EventTypeChargeRefunded, charge("pi_2", true)), stripeSecret, time.Now()); st != 200 || out["applied"] != true {
		t.Fatalf("early refund: %d %v", st, out)
	}
	late := stripeEvent(t, "evt_5", stripe.EventTypeCheckoutSessionCompleted, checkoutSession(acc.PaymentReference, "pi_2"))
	if st, out := send(late, stripeSecret, time.Now()); st != 200 || out["applied"] != true {
		t.Fatalf("refunded payment: %d %v", st, out)
	}
	if got := e.paidUntil(t, tok); got.After(e.now.Now()) {
		t.Fatalf("a payment refunded first bought time: %v", got)
	}

	// A reference that names no account records the payment detached.
	forged := stripeEvent(t, "evt_6", stripe.EventTypeCheckoutSessionCompleted, checkoutSession("1-aaaaaaaaaa", "pi_3"))
	if st, out := send(forged, stripeSecret, time.Now()); st != 200 || out["applied"] != true {
		t.Fatalf("unknown reference: %d %v", st, out)
	}
	recs, _ = e.store.BillingRecords(t.Context(), time.Time{}, time.Time{})
	if len(recs) != 3 || recs[2].Reference != "pi_3" || recs[2].AccountID != 0 {
		t.Fatalf("records %+v", recs)
	}
	if got := e.paidUntil(t, tok); got.After(e.now.Now()) {
		t.Fatalf("an unknown reference paid for the account: %v", got)
	}
}

// TestBTCPayWebhook: an invoice created for the account through the
// Greenfield API pays when BTCPay's signed webhook says it settled and the
// API confirms it, at the API's amount; once however often told; an
// invalid invoice takes the time back, also before it settled.
func TestBTCPayWebhook(t *testing.T) {
	bp := btcpaytest.New(t, "greenfield-key", "store1", "btcpay-secret-0123456789")
	e := newEnv(t, nil, func(c *controlplane.Config) {
		c.BTCPay = &billing.BTCPay{URL: bp.URL, APIKey: bp.APIKey, StoreID: bp.StoreID, Secret: bp.Secret, Products: testProducts}
	})
	tok := e.login(t, e.newAccount(t, 0))
	var acc apitypes.Account
	e.call(t, "GET", "/api/v1/account", tok, nil, &acc)
	before := e.paidUntil(t, tok)
	deliver := func(typ, id string) (int, map[string]any) {
		body, sig := bp.Webhook(typ, id)
		return e.post(t, "/api/v1/billing/btcpay", "BTCPay-Sig", sig, body)
	}
	invoice := func() string {
		var inv apitypes.Invoice
		if st := e.call(t, "POST", "/api/v1/billing/btcpay/invoice", tok, apitypes.InvoiceRequest{Product: "premium-30"}, &inv); st != 200 {
			t.Fatalf("creating invoice: %d", st)
		}
		id := inv.CheckoutLink[len(bp.URL+"/i/"):]
		got, ok := bp.Invoice(id)
		if !ok || got.Amount != "5.00" || got.Currency != "EUR" || got.Metadata["orderId"] != acc.PaymentReference || got.Metadata["veilProduct"] != "premium-30" {
			t.Fatalf("invoice %+v (found %v)", got, ok)
		}
		return id
	}
	if st := e.call(t, "POST", "/api/v1/billing/btcpay/invoice", tok, apitypes.InvoiceRequest{Product: "gold-999"}, nil); st != 400 {
		t.Errorf("invoice for an unknown product: %d, want 400", st)
	}
	if st := e.call(t, "POST", "/api/v1/billing/btcpay/invoice", "", apitypes.InvoiceRequest{Product: "premium-30"}, nil); st != 401 {
		t.Errorf("invoice without a session: %d, want 401", st)
	}

	if st := e.call(t, "POST", "/api/v1/billing/btcpay/invoice", tok, apitypes.InvoiceRequest{Product: "premium-30", RedirectURL: "javascript:alert(1)"}, nil); st != 400 {
		t.Errorf("invoice with a script redirect: %d, want 400", st)
	}
	id := invoice()
	body, sig := bp.Webhook("InvoiceSettled", id)
	// Settled told before BTCPay settled it (or forged by a replay of an
	// old webhook): the API says New, nothing is paid.
	if st, out := e.post(t, "/api/v1/billing/btcpay", "BTCPay-Sig", sig, body); st != 200 || out["ignored"] != true {
		t.Fatalf("settled webhook for an unsettled invoice: %d %v", st, out)
	}
	bp.SetStatus(id, "Settled")
	for name, s := range map[string]string{"no signature": "", "wrong signature": billing.SignBTCPay("another-secret-0123456789", body),
		"bare hex": sig[len("sha256="):]} {
		if st, _ := e.post(t, "/api/v1/billing/btcpay", "BTCPay-Sig", s, body); st != 401 {
			t.Errorf("%s: %d, want 401", name, st)
		}
	}
	if got := e.paidUntil(t, tok); !got.Equal(before) {
		t.Fatalf("refused webhooks moved the paid time to %v", got)
	}
	// The same webhook delivered again, and a new delivery: paid once.
	for i, want := range []bool{true, false} {
		if st, out := e.post(t, "/api/v1/billing/btcpay", "BTCPay-Sig", sig, body); st != 200 || out["applied"] != want {
			t.Fatalf("delivery %d: %d %v, want applied=%v", i+1, st, out, want)
		}
	}
	if st, out := deliver("InvoiceSettled", id); st != 200 || out["applied"] != false {
		t.Fatalf("second delivery: %d %v", st, out)
	}
	want := e.now.Now().AddDate(0, 0, 30).Truncate(time.Microsecond)
	if got := e.paidUntil(t, tok); !got.Equal(want) {
		t.Fatalf("paid until %v, want %v", got, want)
	}
	recs, _ := e.store.BillingRecords(t.Context(), time.Time{}, time.Time{})
	if len(recs) != 1 || recs[0].Processor != "btcpay" || recs[0].Reference != id || recs[0].AmountCents != 500 || recs[0].AccountID == 0 {
		t.Fatalf("records %+v", recs)
	}

	// An expired invoice pays nothing; an invalid one takes its time back.
	exp := invoice()
	bp.SetStatus(exp, "Expired")
	if st, out := deliver("InvoiceExpired", exp); st != 200 || out["ignored"] != true {
		t.Fatalf("expired: %d %v", st, out)
	}
	bp.SetStatus(id, "Invalid")
	if st, out := deliver("InvoiceInvalid", id); st != 200 || out["applied"] != true {
		t.Fatalf("invalid: %d %v", st, out)
	}
	if got := e.paidUntil(t, tok); got.After(e.now.Now()) {
		t.Fatalf("after the invoice was invalid, paid until %v", got)
	}

	// Invalid before settled: the settlement then buys nothing.
	early := invoice()
	bp.SetStatus(early, "Invalid")
	if st, out := deliver("InvoiceInvalid", early); st != 200 || out["applied"] != true {
		t.Fatalf("early invalid: %d %v", st, out)
	}
	bp.SetStatus(early, "Settled")
	if st, out := deliver("InvoiceSettled", early); st != 200 || out["applied"] != true {
		t.Fatalf("settled after invalid: %d %v", st, out)
	}
	if got := e.paidUntil(t, tok); got.After(e.now.Now()) {
		t.Fatalf("an invoice invalid first bought time: %v", got)
	}

	// An invoice whose orderId names no account is recorded detached; an
	// invoice the API does not know is refused for a retry.
	if st, out := deliver("InvoiceSettled", "INV-NOPE"); st != 502 {
		t.Fatalf("unknown invoice: %d %v, want 502", st, out)
	}
	stray := invoice()
	bp.SetMetadata(stray, "orderId", "1-aaaaaaaaaa")
	bp.SetStatus(stray, "Settled")
	if st, out := deliver("InvoiceSettled", stray); st != 200 || out["applied"] != true {
		t.Fatalf("unknown reference: %d %v", st, out)
	}
	recs, _ = e.store.BillingRecords(t.Context(), time.Time{}, time.Time{})
	if last := recs[len(recs)-1]; last.Reference != stray || last.AccountID != 0 {
		t.Fatalf("records %+v", recs)
	}
}
