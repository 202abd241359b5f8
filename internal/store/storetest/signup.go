package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"veil/internal/store"
)

// testVouchers: a voucher is spent once, also by racing redemptions, and
// its payment extends the paid time; an unknown account spends nothing.
func testVouchers(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	a := createAccount(t, s, store.Account{})
	if err := s.CreateVouchers(ctx, [][]byte{[]byte("v1"), []byte("v2")}, 30, now); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateVouchers(ctx, [][]byte{[]byte("v3"), []byte("v1")}, 30, now); !errors.Is(err, store.ErrCodeCollision) {
		t.Fatalf("a batch with a known hash: %v", err)
	}
	pay := func(ref string, accountID int64) store.Payment {
		return store.Payment{AccountID: accountID, Processor: "voucher", Reference: ref, Product: "voucher", Currency: "XXX"}
	}
	if _, err := s.RedeemVoucher(ctx, []byte("v1"), pay("r0", a.ID+1000), now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("for no account: %v", err)
	}
	const racers = 8
	var wg sync.WaitGroup
	errs := make([]error, racers)
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.RedeemVoucher(ctx, []byte("v1"), pay("r"+string(rune('a'+i)), a.ID), now)
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrVoucherInvalid):
			t.Fatalf("redeem: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d redemptions of one voucher succeeded", won)
	}
	if _, err := s.RedeemVoucher(ctx, []byte("v3"), pay("rz", a.ID), now); !errors.Is(err, store.ErrVoucherInvalid) {
		t.Fatalf("voucher of a refused batch: %v", err)
	}
	got, _ := s.AccountByID(ctx, a.ID)
	if want := now.AddDate(0, 0, 30); !got.PaidUntil.Equal(want) || got.Plan != store.PlanPremium {
		t.Fatalf("paid until %v (%s), want %v", got.PaidUntil, got.Plan, want)
	}
}

// testAffiliates: a referred account's payment credits its affiliate
// once, a refund reverses it once, payouts lower the balance, and
// erasing the referred account keeps the count without the link.
func testAffiliates(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	ctx := t.Context()
	now := time.Now().UTC()
	aff := createAccount(t, s, store.Account{})
	ref := createAccount(t, s, store.Account{})
	if _, err := s.JoinAffiliate(ctx, aff.ID, "code1", now); err != nil {
		t.Fatal(err)
	}
	if a, err := s.JoinAffiliate(ctx, aff.ID, "code2", now); err != nil || a.Code != "code1" {
		t.Fatalf("joining again: %+v %v", a, err)
	}
	if _, err := s.JoinAffiliate(ctx, ref.ID, "code1", now); !errors.Is(err, store.ErrDuplicateName) {
		t.Fatalf("a taken code: %v", err)
	}
	if err := s.Refer(ctx, ref.ID, aff.ID, now); err != nil {
		t.Fatal(err)
	}
	p := store.Payment{AccountID: ref.ID, Processor: "testpay", Reference: "p1", Product: "premium-30", Days: 30,
		AmountCents: 999, Currency: "EUR", AffiliatePercent: 20}
	for range 2 {
		if _, err := s.RecordPayment(ctx, p, now); err != nil {
			t.Fatal(err)
		}
	}
	check := func(what string, signups, payments int, cents int64) {
		t.Helper()
		a, err := s.AffiliateByCode(ctx, "code1")
		if err != nil {
			t.Fatal(err)
		}
		if a.Signups != signups || a.Payments != payments || a.Balances["EUR"] != cents {
			t.Fatalf("%s: %+v, want %d sign-ups, %d payments, %d cents", what, a, signups, payments, cents)
		}
	}
	check("after a payment told twice", 1, 1, 199)
	for range 2 {
		if _, err := s.RefundPayment(ctx, "testpay", "p1", now); err != nil {
			t.Fatal(err)
		}
	}
	check("after its refund told twice", 1, 1, 0)
	p.Reference = "p2"
	s.RecordPayment(ctx, p, now)
	if err := s.RecordPayout(ctx, aff.ID, 100, "EUR", now); err != nil {
		t.Fatal(err)
	}
	check("after a payout", 1, 2, 99)
	// A payment that named no account, attached to the referred one by
	// support, credits the affiliate too.
	detached := store.Payment{Processor: "testpay", Reference: "p3", Product: "premium-30", Days: 30, AmountCents: 500, Currency: "EUR"}
	if _, err := s.RecordPayment(ctx, detached, now); err != nil {
		t.Fatal(err)
	}
	recs, err := s.BillingRecords(ctx, time.Time{}, time.Time{})
	if err != nil || len(recs) != 3 || recs[2].Reference != "p3" {
		t.Fatalf("billing records: %+v, %v", recs, err)
	}
	if err := s.AttachPayment(ctx, recs[2].ID, ref.ID, 20, now); err != nil {
		t.Fatal(err)
	}
	check("after a detached payment attached", 1, 3, 199)
	if err := s.DeleteAccount(ctx, ref.ID); err != nil {
		t.Fatal(err)
	}
	check("after the referred account's erasure", 1, 3, 199)
	if err := s.DeleteAccount(ctx, aff.ID); err != nil {
		t.Fatal(err)
	}
	if as, _ := s.Affiliates(ctx); len(as) != 0 {
		t.Fatalf("affiliates after its erasure: %+v", as)
	}
}

// testReminders: an account is due once per paid period.
func testReminders(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	end := now.Add(48 * time.Hour)
	a := createAccount(t, s, store.Account{Email: "r@example.org", PaidUntil: end, Lang: "tr"})
	createAccount(t, s, store.Account{PaidUntil: end}) // no email
	createAccount(t, s, store.Account{Email: "later@example.org", PaidUntil: now.Add(30 * 24 * time.Hour)})
	due, err := s.ExpiringAccounts(ctx, now, now.Add(72*time.Hour))
	if err != nil || len(due) != 1 || due[0].ID != a.ID || due[0].Lang != "tr" { // the reminder's language
		t.Fatalf("due: %+v %v", due, err)
	}
	if ok, err := s.MarkReminded(ctx, a.ID, end); !ok || err != nil {
		t.Fatalf("first claim: %v %v", ok, err)
	}
	if ok, _ := s.MarkReminded(ctx, a.ID, end); ok {
		t.Fatal("claimed twice")
	}
	if due, _ := s.ExpiringAccounts(ctx, now, now.Add(72*time.Hour)); len(due) != 0 {
		t.Fatalf("due after the reminder: %+v", due)
	}
	next := end.AddDate(0, 0, 30)
	if err := s.UpdateAccount(ctx, a.ID, store.AccountUpdate{PaidUntil: &next}); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.ExpiringAccounts(ctx, next.Add(-time.Hour), next); len(due) != 1 {
		t.Fatalf("a new period is not due: %+v", due)
	}
}
