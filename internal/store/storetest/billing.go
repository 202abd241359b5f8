package storetest

import (
	"testing"
	"time"

	"veil/internal/store"
)

// testBilling: a payment extends the paid time once however often it is
// reported, from its end when it is still running and from now when it
// has ended; a payment for an unknown account is kept detached; erasing
// the account detaches its records; retention deletes by age.
func testBilling(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	ctx := t.Context()
	now := time.Now().UTC()
	running := createAccount(t, s, store.Account{PaidUntil: now.Add(48 * time.Hour).Truncate(time.Microsecond)})
	ended := createAccount(t, s, store.Account{PaidUntil: now.Add(-48 * time.Hour)})
	pay := func(accountID int64, ref string, days int) bool {
		t.Helper()
		ok, err := s.RecordPayment(ctx, store.Payment{AccountID: accountID, Processor: "testpay", Reference: ref,
			Product: "premium-30", Days: days, AmountCents: 500, Currency: "EUR"}, time.Now())
		if err != nil {
			t.Fatalf("RecordPayment(%s): %v", ref, err)
		}
		return ok
	}

	if !pay(running.ID, "pay-1", 30) {
		t.Fatal("a new payment was not applied")
	}
	got := accountByID(t, s, running.ID)
	if want := running.PaidUntil.AddDate(0, 0, 30); !got.PaidUntil.Equal(want) || got.Plan != store.PlanPremium {
		t.Errorf("running account: paid until %v on %s, want %v on premium", got.PaidUntil, got.Plan, want)
	}
	// The processor tells again: nothing changes.
	if pay(running.ID, "pay-1", 30) {
		t.Error("a repeated notification was applied")
	}
	if again := accountByID(t, s, running.ID); !again.PaidUntil.Equal(got.PaidUntil) {
		t.Errorf("a repeated notification moved paid time to %v", again.PaidUntil)
	}

	pay(ended.ID, "pay-2", 30)
	got = accountByID(t, s, ended.ID)
	if d := got.PaidUntil.Sub(now.AddDate(0, 0, 30)); d < 0 || d > time.Minute {
		t.Errorf("ended account: paid until %v, want 30 days from now (%v)", got.PaidUntil, now.AddDate(0, 0, 30))
	}

	// Unknown account: recorded, detached, changes no account.
	if !pay(987654321, "pay-3", 30) {
		t.Error("a payment for an unknown account was not recorded")
	}
	for _, bad := range []store.Payment{
		{AccountID: running.ID, Processor: "", Reference: "x", Days: 30},
		{AccountID: running.ID, Processor: "p", Reference: "", Days: 30},
		{AccountID: running.ID, Processor: "p", Reference: "x", Days: 0},
		{AccountID: running.ID, Processor: "p", Reference: "x", Days: 30, AmountCents: -1},
	} {
		if _, err := s.RecordPayment(ctx, bad, time.Now()); err == nil {
			t.Errorf("RecordPayment(%+v) succeeded", bad)
		}
	}

	rows, err := s.AccountRows(ctx, running.ID)
	if err != nil {
		t.Fatal(err)
	}
	if recs := rows["billing_records"]; len(recs) != 1 || recs[0]["reference"] != "pay-1" || recs[0]["days"] != int64(30) {
		t.Errorf("the account's billing rows = %v, want pay-1 alone", recs)
	}

	// Erasure detaches; the record stays for its tax period.
	if err := s.DeleteAccount(ctx, ended.ID); err != nil {
		t.Fatal(err)
	}
	recs, err := s.BillingRecords(ctx, time.Time{}, time.Time{})
	if err != nil || len(recs) != 3 {
		t.Fatalf("BillingRecords = %+v, %v; want 3", recs, err)
	}
	r := recs[0]
	if r.Reference != "pay-1" || r.AccountID != running.ID || r.Processor != "testpay" || r.Product != "premium-30" ||
		r.Days != 30 || r.AmountCents != 500 || r.Currency != "EUR" || r.CreatedAt.Sub(now) > time.Minute || r.CreatedAt.Before(now.Add(-time.Minute)) {
		t.Errorf("first record %+v", r)
	}
	if recs[1].AccountID != 0 || recs[2].AccountID != 0 {
		t.Errorf("the erased account's and the unknown account's records are attached: %d, %d", recs[1].AccountID, recs[2].AccountID)
	}
	// Support gives the unknown account's payment to the running account.
	before := accountByID(t, s, running.ID).PaidUntil
	if err := s.AttachPayment(ctx, recs[2].ID, running.ID, 0, now); err != nil {
		t.Fatalf("AttachPayment: %v", err)
	}
	if got := accountByID(t, s, running.ID).PaidUntil; !got.Equal(before.AddDate(0, 0, 30)) {
		t.Errorf("after attaching: paid until %v, want %v", got, before.AddDate(0, 0, 30))
	}
	wantErr(t, "attaching twice", s.AttachPayment(ctx, recs[2].ID, running.ID, 0, now), store.ErrAttached)
	wantErr(t, "attaching an attached record", s.AttachPayment(ctx, recs[0].ID, running.ID, 0, now), store.ErrAttached)
	wantErr(t, "attaching no record", s.AttachPayment(ctx, 987654, running.ID, 0, now), store.ErrNotFound)
	wantErr(t, "attaching to no account", s.AttachPayment(ctx, recs[1].ID, 987654, 0, now), store.ErrNotFound)
	// A refund takes the paid time back, once, and marks the record.
	before = accountByID(t, s, running.ID).PaidUntil
	if ok, err := s.RefundPayment(ctx, "testpay", "pay-1", now); err != nil || !ok {
		t.Fatalf("RefundPayment: %v, %v", ok, err)
	}
	if got := accountByID(t, s, running.ID).PaidUntil; !got.Equal(before.AddDate(0, 0, -30)) {
		t.Errorf("after the refund: paid until %v, want %v", got, before.AddDate(0, 0, -30))
	}
	if ok, err := s.RefundPayment(ctx, "testpay", "pay-1", now); err != nil || ok {
		t.Errorf("refunding twice: %v, %v; want not applied", ok, err)
	}
	recs, _ = s.BillingRecords(ctx, time.Time{}, time.Time{})
	if recs[0].RefundedAt.IsZero() || !recs[1].RefundedAt.IsZero() {
		t.Errorf("refund marks: %v, %v", recs[0].RefundedAt, recs[1].RefundedAt)
	}
	// Paid time never moves back past now: a refunded account whose time
	// ran out meanwhile just ends.
	short := createAccount(t, s, store.Account{})
	if _, err := s.RecordPayment(ctx, store.Payment{AccountID: short.ID, Processor: "testpay", Reference: "pay-4",
		Product: "premium-30", Days: 30, Currency: "EUR"}, now.AddDate(0, 0, -20)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RefundPayment(ctx, "testpay", "pay-4", now); err != nil {
		t.Fatal(err)
	}
	if got := accountByID(t, s, short.ID).PaidUntil; got.Sub(now.Truncate(time.Microsecond)).Abs() > time.Millisecond {
		t.Errorf("refund after 20 of 30 days: paid until %v, want now (%v)", got, now)
	}
	if in, err := s.BillingRecords(ctx, now.Add(time.Hour), time.Time{}); err != nil || len(in) != 0 {
		t.Errorf("records from an hour on: %v, %v", in, err)
	}
	if in, err := s.BillingRecords(ctx, now.Add(-time.Hour), now.Add(time.Hour)); err != nil || len(in) != 3 {
		t.Errorf("records before an hour on: %d, %v", len(in), err)
	}
	if n, err := s.DeleteBillingBefore(ctx, now.Add(-time.Hour)); err != nil || n != 1 {
		t.Fatalf("DeleteBillingBefore(an hour ago) = %d, %v; want pay-4's record, made 20 days ago", n, err)
	}
	if n, err := s.DeleteBillingBefore(ctx, now.Add(time.Hour)); err != nil || n != 3 {
		t.Fatalf("DeleteBillingBefore(in an hour) = %d, %v; want the 3 others", n, err)
	}
	rows, err = s.AccountRows(ctx, running.ID)
	if err != nil || len(rows["billing_records"]) != 0 {
		t.Errorf("after retention: %v, %v", rows["billing_records"], err)
	}
}

// testEarlyRefund: a refund told before its payment is kept; the payment,
// when it comes, is recorded refunded and buys no time; a refund whose
// payment never comes goes with the tax period.
func testEarlyRefund(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	ctx := t.Context()
	now := time.Now().UTC()
	a := createAccount(t, s, store.Account{PaidUntil: now.Add(48 * time.Hour).Truncate(time.Microsecond)})
	refundAt := now.Add(-time.Minute).Truncate(time.Microsecond)
	for i, want := range []bool{true, false} {
		if ok, err := s.RefundPayment(ctx, "testpay", "early", refundAt); err != nil || ok != want {
			t.Fatalf("refund %d before its payment: %v, %v; want applied %v", i+1, ok, err, want)
		}
	}
	if recs, err := s.BillingRecords(ctx, time.Time{}, time.Time{}); err != nil || len(recs) != 0 {
		t.Fatalf("records before the payment: %+v, %v; want none", recs, err)
	}
	pay := store.Payment{AccountID: a.ID, Processor: "testpay", Reference: "early", Product: "premium-30", Days: 30, AmountCents: 500, Currency: "EUR"}
	if ok, err := s.RecordPayment(ctx, pay, now); err != nil || !ok {
		t.Fatalf("RecordPayment after its refund: %v, %v", ok, err)
	}
	if got := accountByID(t, s, a.ID); !got.PaidUntil.Equal(a.PaidUntil) {
		t.Errorf("a payment refunded before it came moved paid time from %v to %v", a.PaidUntil, got.PaidUntil)
	}
	recs, err := s.BillingRecords(ctx, time.Time{}, time.Time{})
	if err != nil || len(recs) != 1 || recs[0].Reference != "early" || !recs[0].RefundedAt.Equal(refundAt) || recs[0].AccountID != a.ID {
		t.Fatalf("records after the payment: %+v, %v; want early, refunded at %v", recs, err, refundAt)
	}
	// The refund was used up: the payment told again, or refunded again,
	// changes nothing.
	if ok, err := s.RecordPayment(ctx, pay, now); err != nil || ok {
		t.Errorf("the payment told again: %v, %v; want not applied", ok, err)
	}
	if ok, err := s.RefundPayment(ctx, "testpay", "early", now); err != nil || ok {
		t.Errorf("the refund told again: %v, %v; want not applied", ok, err)
	}
	if got := accountByID(t, s, a.ID); !got.PaidUntil.Equal(a.PaidUntil) {
		t.Errorf("paid time moved to %v, want %v", got.PaidUntil, a.PaidUntil)
	}
	// Support attaching the refunded payment elsewhere gives no time either.
	if err := s.DeleteAccount(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	b := createAccount(t, s, store.Account{})
	if err := s.AttachPayment(ctx, recs[0].ID, b.ID, 0, now); err != nil {
		t.Fatal(err)
	}
	if got := accountByID(t, s, b.ID); !got.PaidUntil.IsZero() {
		t.Errorf("attaching the refunded payment paid until %v", got.PaidUntil)
	}

	// A refund whose payment never comes goes with the tax period.
	if ok, err := s.RefundPayment(ctx, "testpay", "orphan", refundAt); err != nil || !ok {
		t.Fatalf("orphan refund: %v, %v", ok, err)
	}
	if n, err := s.DeleteBillingBefore(ctx, refundAt); err != nil || n != 0 {
		t.Errorf("DeleteBillingBefore(the refund's time) = %d, %v; want 0", n, err)
	}
	if n, err := s.DeleteBillingBefore(ctx, now.Add(time.Hour)); err != nil || n != 2 {
		t.Errorf("DeleteBillingBefore(in an hour) = %d, %v; want the record and the orphan refund", n, err)
	}
	if ok, err := s.RecordPayment(ctx, store.Payment{AccountID: b.ID, Processor: "testpay", Reference: "orphan", Product: "premium-30",
		Days: 30, Currency: "EUR"}, now); err != nil || !ok {
		t.Fatalf("RecordPayment(orphan): %v, %v", ok, err)
	}
	if got := accountByID(t, s, b.ID); got.PaidUntil.IsZero() {
		t.Error("a payment whose refund retention deleted bought nothing")
	}
}
