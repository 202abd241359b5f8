package controlplane_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"veil/internal/apitypes"
	"veil/internal/billing"
)

const testPaySecret = "test-secret-0123456789"

// notify sends a processor's notification signed with secret at time at.
func (e *env) notify(t *testing.T, processor, secret string, at time.Time, body []byte) (int, map[string]any) {
	t.Helper()
	return e.send(t, processor, billing.SignGeneric(secret, at, body), body)
}

// signed sends a notification to testpay with the Veil-Signature header
// sig.
func (e *env) signed(t *testing.T, sig string, body []byte) (int, map[string]any) {
	t.Helper()
	return e.send(t, "testpay", sig, body)
}

func (e *env) send(t *testing.T, processor, sig string, body []byte) (int, map[string]any) {
	t.Helper()
	return e.post(t, "/api/v1/billing/"+processor, "Veil-Signature", sig, body)
}

func paymentBody(t *testing.T, ev billing.GenericEvent) []byte {
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBillingWebhook: a signed notification pays for the account its
// reference names, once however often it comes; an expired account's
// device comes back into the peer map; anything unsigned, stale or
// malformed changes nothing.
func TestBillingWebhook(t *testing.T) {
	e := newEnv(t, nil)
	gw := e.addGateway(t, "gw1")
	code := e.newAccount(t, 1)
	tok := e.login(t, code)
	var acc apitypes.Account
	e.call(t, "GET", "/api/v1/account", tok, nil, &acc)
	if acc.PaymentReference == "" || !strings.Contains(acc.PaymentReference, "-") {
		t.Fatalf("account shows payment reference %q", acc.PaymentReference)
	}
	if want := "https://pay.example/veil?client_reference_id=" + acc.PaymentReference; acc.CheckoutURL != want {
		t.Errorf("checkout URL %q, want %q", acc.CheckoutURL, want)
	}
	key := newPub(t)
	e.call(t, "POST", "/api/v1/devices", tok, apitypes.DeviceRequest{PublicKey: key}, nil)

	// The paid day ends (trial included): the device leaves the map.
	m := pollPeers(t, e.url, gw, 0, 0)
	e.now.Add(10 * 24 * time.Hour)
	if m2 := pollPeers(t, e.url, gw, m.Version, 20*time.Second); len(m2.Removed) != 1 {
		t.Fatalf("expired account still in the map: %+v", m2)
	}
	tok = e.login(t, code) // the session, an hour long, has ended too
	acc = apitypes.Account{}
	e.call(t, "GET", "/api/v1/account", tok, nil, &acc)
	if acc.Active {
		t.Fatal("the account is still active after its time ran out")
	}

	ev := billing.GenericEvent{Type: billing.GenericPaid, Reference: "pi_1", Account: acc.PaymentReference,
		Product: "premium-30", Days: 30, AmountCents: 500, Currency: "EUR"}
	body := paymentBody(t, ev)
	refused := map[string]func() (int, map[string]any){
		"no signature": func() (int, map[string]any) {
			resp, err := http.Post(e.url+"/api/v1/billing/testpay", "application/json", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode, nil
		},
		"wrong secret": func() (int, map[string]any) {
			return e.notify(t, "testpay", "another-secret-0123456789", e.now.Now(), body)
		},
		"stale": func() (int, map[string]any) {
			return e.notify(t, "testpay", testPaySecret, e.now.Now().Add(-10*time.Minute), body)
		},
		"unknown processor": func() (int, map[string]any) { return e.notify(t, "other", testPaySecret, e.now.Now(), body) },
		"malformed": func() (int, map[string]any) {
			return e.notify(t, "testpay", testPaySecret, e.now.Now(), []byte(`{"type": "payment.succeeded", "days": "thirty"`))
		},
		"bad currency": func() (int, map[string]any) {
			bad := ev
			bad.Currency = "euro"
			return e.notify(t, "testpay", testPaySecret, e.now.Now(), paymentBody(t, bad))
		},
		"no days": func() (int, map[string]any) {
			bad := ev
			bad.Days = 0
			return e.notify(t, "testpay", testPaySecret, e.now.Now(), paymentBody(t, bad))
		},
		// A body two parsers could read differently is refused even when
		// signed: a second object after the first, a key given twice.
		"trailing data": func() (int, map[string]any) {
			return e.notify(t, "testpay", testPaySecret, e.now.Now(), append(append([]byte{}, body...), []byte(` {"days": 3000}`)...))
		},
		"trailing garbage": func() (int, map[string]any) {
			return e.notify(t, "testpay", testPaySecret, e.now.Now(), append(append([]byte{}, body...), []byte(`x`)...))
		},
		"duplicate key": func() (int, map[string]any) {
			dup := bytes.Replace(body, []byte(`"days":30`), []byte(`"days":30,"days":3000`), 1)
			return e.notify(t, "testpay", testPaySecret, e.now.Now(), dup)
		},
		"two times": func() (int, map[string]any) {
			sig := billing.SignGeneric(testPaySecret, e.now.Now(), body)
			return e.signed(t, "t=1,"+sig, body)
		},
		"time not a number": func() (int, map[string]any) {
			sig := billing.SignGeneric(testPaySecret, e.now.Now(), body)
			return e.signed(t, strings.Replace(sig, "t=", "t=+", 1), body)
		},
	}
	want := map[string]int{"no signature": 401, "wrong secret": 401, "stale": 401, "unknown processor": 404, "malformed": 400, "bad currency": 400, "no days": 400,
		"trailing data": 400, "trailing garbage": 400, "duplicate key": 400, "two times": 401, "time not a number": 401}
	for name, send := range refused {
		if st, _ := send(); st != want[name] {
			t.Errorf("%s: %d, want %d", name, st, want[name])
		}
	}
	acc = apitypes.Account{}
	if st := e.call(t, "GET", "/api/v1/account", tok, nil, &acc); st != 200 || acc.Active {
		t.Fatalf("after refused notifications: %d %+v", st, acc)
	}

	// Other events are acknowledged and ignored.
	other := ev
	other.Type = "payment.pending"
	if st, out := e.notify(t, "testpay", testPaySecret, e.now.Now(), paymentBody(t, other)); st != 200 || out["ignored"] != true {
		t.Errorf("another event type: %d %v", st, out)
	}

	// The payment: applied once, however often it is told.
	for i, wantApplied := range []bool{true, false, false} {
		st, out := e.notify(t, "testpay", testPaySecret, e.now.Now(), body)
		if st != 200 || out["applied"] != wantApplied {
			t.Fatalf("notification %d: %d %v, want applied=%v", i+1, st, out, wantApplied)
		}
	}
	acc = apitypes.Account{}
	e.call(t, "GET", "/api/v1/account", tok, nil, &acc)
	if !acc.Active || acc.Plan != "premium" || acc.PaidUntil == nil {
		t.Fatalf("after paying: %+v", acc)
	}
	if want := e.now.Now().AddDate(0, 0, 30); !acc.PaidUntil.Equal(want.Truncate(time.Microsecond)) {
		t.Errorf("paid until %v, want 30 days from now (%v), once", acc.PaidUntil, want)
	}
	// The device returns at the next activity sync.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := pollPeers(t, e.url, gw, 0, 0); len(m.Peers) == 1 && m.Peers[0].PublicKey == key {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the paid account's device did not come back into the peer map")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A reference that names no account (forged, or its account erased)
	// is recorded detached and pays for nobody.
	forged := ev
	forged.Reference, forged.Account = "pi_2", "1-aaaaaaaaaa"
	if st, out := e.notify(t, "testpay", testPaySecret, e.now.Now(), paymentBody(t, forged)); st != 200 || out["applied"] != true {
		t.Fatalf("forged reference: %d %v", st, out)
	}
	var again apitypes.Account
	e.call(t, "GET", "/api/v1/account", tok, nil, &again)
	if !again.PaidUntil.Equal(*acc.PaidUntil) {
		t.Errorf("a forged reference moved the account's paid time to %v", again.PaidUntil)
	}
}

// TestAdminBilling: the operator lists the records, by date range, with
// the admin token only.
func TestAdminBilling(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login(t, e.newAccount(t, 30))
	var acc apitypes.Account
	e.call(t, "GET", "/api/v1/account", tok, nil, &acc)
	ev := billing.GenericEvent{Type: billing.GenericPaid, Reference: "pi_9", Account: acc.PaymentReference,
		Product: "premium-365", Days: 365, AmountCents: 4999, Currency: "EUR"}
	if st, _ := e.notify(t, "testpay", testPaySecret, e.now.Now(), paymentBody(t, ev)); st != 200 {
		t.Fatalf("notification: %d", st)
	}
	var recs []apitypes.BillingRecord
	if st := e.call(t, "GET", "/api/v1/admin/billing", e.admin, nil, &recs); st != 200 || len(recs) != 1 {
		t.Fatalf("list: %d %+v", st, recs)
	}
	if r := recs[0]; r.Reference != "pi_9" || r.Processor != "testpay" || r.Days != 365 || r.AmountCents != 4999 || r.Account == 0 {
		t.Errorf("record %+v", r)
	}
	tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	if st := e.call(t, "GET", "/api/v1/admin/billing?from="+tomorrow, e.admin, nil, &recs); st != 200 || len(recs) != 0 {
		t.Errorf("from tomorrow: %d %+v", st, recs)
	}
	if st := e.call(t, "GET", "/api/v1/admin/billing?from=yesterday", e.admin, nil, nil); st != 400 {
		t.Errorf("a bad date: %d, want 400", st)
	}
	if st := e.call(t, "GET", "/api/v1/admin/billing", tok, nil, nil); st != 401 && st != 403 {
		t.Errorf("an account's token: %d, want refused", st)
	}

	// A payment whose reference was mistyped arrives detached; support
	// attaches it to the account the customer names by its reference.
	lost := ev
	lost.Reference, lost.Account = "pi_10", "typo"
	e.notify(t, "testpay", testPaySecret, e.now.Now(), paymentBody(t, lost))
	e.call(t, "GET", "/api/v1/admin/billing", e.admin, nil, &recs)
	if len(recs) != 2 || recs[1].Account != 0 {
		t.Fatalf("the mistyped payment: %+v", recs)
	}
	e.call(t, "GET", "/api/v1/account", tok, nil, &acc)
	before := *acc.PaidUntil
	attach := func(id int64, ref string) int {
		return e.call(t, "POST", fmt.Sprintf("/api/v1/admin/billing/%d/attach", id), e.admin, apitypes.BillingAttachRequest{PaymentReference: ref}, nil)
	}
	if st := attach(recs[1].ID, "1-forgedxxxx"); st != 400 {
		t.Errorf("attach with a forged reference: %d, want 400", st)
	}
	if st := attach(recs[1].ID, acc.PaymentReference); st != 204 {
		t.Fatalf("attach: %d", st)
	}
	if st := attach(recs[1].ID, acc.PaymentReference); st != 409 {
		t.Errorf("attach twice: %d, want 409", st)
	}
	acc = apitypes.Account{}
	e.call(t, "GET", "/api/v1/account", tok, nil, &acc)
	if !acc.PaidUntil.Equal(before.AddDate(0, 0, 365)) {
		t.Errorf("after attaching: paid until %v, want %v", acc.PaidUntil, before.AddDate(0, 0, 365))
	}

	// A refund takes back what the payment bought, once.
	refund := func(ref string) (int, map[string]any) {
		return e.notify(t, "testpay", testPaySecret, e.now.Now(), []byte(`{"type": "payment.refunded", "reference": "`+ref+`"}`))
	}
	for i, want := range []bool{true, false} {
		if st, out := refund("pi_10"); st != 200 || out["applied"] != want {
			t.Fatalf("refund %d: %d %v, want applied=%v", i+1, st, out, want)
		}
	}
	acc = apitypes.Account{}
	e.call(t, "GET", "/api/v1/account", tok, nil, &acc)
	if !acc.PaidUntil.Equal(before) {
		t.Errorf("after the refund: paid until %v, want %v", acc.PaidUntil, before)
	}
	e.call(t, "GET", "/api/v1/admin/billing", e.admin, nil, &recs)
	if len(recs) != 2 || recs[1].RefundedAt == nil || recs[0].RefundedAt != nil {
		t.Errorf("refund marks: %+v", recs)
	}
}

// TestRefundBeforePayment: processors do not promise order. A refund told
// before its payment is kept; the payment then buys nothing and its
// record shows it refunded.
func TestRefundBeforePayment(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login(t, e.newAccount(t, 1))
	var acc apitypes.Account
	e.call(t, "GET", "/api/v1/account", tok, nil, &acc)
	refundedAt := e.now.Now()
	for i, want := range []bool{true, false} {
		body := []byte(`{"type": "payment.refunded", "reference": "pi_early"}`)
		if st, out := e.notify(t, "testpay", testPaySecret, e.now.Now(), body); st != 200 || out["applied"] != want {
			t.Fatalf("refund %d before its payment: %d %v, want applied=%v", i+1, st, out, want)
		}
	}
	e.now.Add(time.Minute)
	body := paymentBody(t, billing.GenericEvent{Type: billing.GenericPaid, Reference: "pi_early", Account: acc.PaymentReference,
		Product: "premium-30", Days: 30, AmountCents: 500, Currency: "EUR"})
	if st, out := e.notify(t, "testpay", testPaySecret, e.now.Now(), body); st != 200 || out["applied"] != true {
		t.Fatalf("payment after its refund: %d %v", st, out)
	}
	var after apitypes.Account
	e.call(t, "GET", "/api/v1/account", tok, nil, &after)
	if acc.PaidUntil == nil || after.PaidUntil == nil || !after.PaidUntil.Equal(*acc.PaidUntil) {
		t.Errorf("the refunded payment moved paid time from %v to %v", acc.PaidUntil, after.PaidUntil)
	}
	var recs []apitypes.BillingRecord
	e.call(t, "GET", "/api/v1/admin/billing", e.admin, nil, &recs)
	if len(recs) != 1 || recs[0].Reference != "pi_early" || recs[0].RefundedAt == nil || !recs[0].RefundedAt.Equal(refundedAt.UTC().Truncate(time.Microsecond)) {
		t.Errorf("billing records %+v, want pi_early refunded at %v", recs, refundedAt)
	}
}
