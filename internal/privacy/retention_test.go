package privacy_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"veil/internal/privacy"
	"veil/internal/store"
	"veil/internal/store/storetest"
)

// clock is a settable clock.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time      { return c.t }
func (c *clock) Add(d time.Duration) { c.t = c.t.Add(d) }

func counts(ds []privacy.Deleted) map[string]int {
	m := map[string]int{}
	for _, d := range ds {
		m[d.What] += d.Count
	}
	return m
}

// TestSweeper is done-when point 3: every rule of the inventory enforced
// with a settable clock, and a legal hold suspending deletion.
func TestSweeper(t *testing.T) {
	t.Parallel()
	storetest.Dialects(t, func(t *testing.T, newDB func(testing.TB) string) {
		t.Parallel()
		ctx := t.Context()
		s := openStore(t, newDB(t))
		start := time.Now().UTC().Truncate(time.Second)
		clk := &clock{t: start}
		sw := &privacy.Sweeper{Store: s, Periods: privacy.Periods{UnusedAccount: 30 * 24 * time.Hour, TaxYears: 7}, Now: clk.Now}

		mk := func(name string, a store.Account) *store.Account {
			t.Helper()
			a.CodeHash, a.Plan, a.CreatedAt = []byte(name), store.PlanFree, start
			if _, err := s.CreateAccount(ctx, &a); err != nil {
				t.Fatal(err)
			}
			return &a
		}
		idle := mk("idle", store.Account{TrialUntil: start.Add(7 * 24 * time.Hour)})
		paid := mk("paid", store.Account{PaidUntil: start.Add(365 * 24 * time.Hour)})
		held := mk("held", store.Account{LegalHold: true})
		used := mk("used", store.Account{})
		if _, err := s.CreateDevice(ctx, store.NewDevice{AccountID: paid.ID, PublicKey: "pk", MaxDevices: 5, MinIndex: 2, MaxIndex: 9}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateSession(ctx, store.Session{TokenHash: []byte("s"), AccountID: paid.ID, ExpiresAt: start.Add(time.Hour)}, start); err != nil {
			t.Fatal(err)
		}
		for i, acc := range []int64{0, held.ID, paid.ID} {
			tk := &store.Ticket{AccountID: acc, TokenHash: []byte(fmt.Sprint("tok", i)), Subject: "s", CreatedAt: start}
			if _, err := s.CreateTicket(ctx, tk, store.TicketMessage{Body: "old"}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.QueueMail(ctx, &store.Mail{Kind: store.MailTransactional, To: "x@example.org", Subject: "s", Body: "b", CreatedAt: start}); err != nil {
			t.Fatal(err)
		}
		if err := s.CountClient(ctx, privacy.Day(start), "linux 6.1", "1.0.0"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RecordPayment(ctx, store.Payment{AccountID: paid.ID, Processor: "testpay", Reference: "r1", Product: "premium-30", Days: 30, Currency: "EUR"}, start); err != nil {
			t.Fatal(err)
		}
		// A device removed now leaves a tombstone, for a gateway that has
		// not synced it.
		gw := &store.Gateway{Name: "gw", TokenHash: []byte("gw")}
		if _, err := s.CreateGateway(ctx, gw); err != nil {
			t.Fatal(err)
		}
		if err := s.GatewaySynced(ctx, gw.ID, 0); err != nil {
			t.Fatal(err)
		}
		d, err := s.CreateDevice(ctx, store.NewDevice{AccountID: paid.ID, PublicKey: "gone", MaxDevices: 5, MinIndex: 2, MaxIndex: 9})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteDevice(ctx, paid.ID, d.ID); err != nil {
			t.Fatal(err)
		}

		steps := []struct {
			advance time.Duration
			touch   *store.Account // logged in at the new time
			want    map[string]int
		}{
			{0, nil, map[string]int{"accounts": 0, "sessions": 0, "support_tickets": 0, "support_messages": 0, "mail_outbox": 0, "peer_tombstones": 0, "billing_records": 0}},
			{2 * time.Hour, nil, map[string]int{"sessions": 1}},
			{2 * 24 * time.Hour, nil, map[string]int{"peer_tombstones": 1}},
			{8 * 24 * time.Hour, used, map[string]int{"mail_outbox": 1}},
			// Day 39: idle's trial ended 32 days ago; used logged in on day
			// 10, under 30 days ago.
			{29 * 24 * time.Hour, nil, map[string]int{"accounts": 1}},
			// Past 6 months: tickets go, except the held account's; used
			// has not logged in for 30 days.
			{150 * 24 * time.Hour, nil, map[string]int{"support_tickets": 2, "support_messages": 2, "accounts": 1}},
			// Past 2 years: the counters go, and the paid account whose
			// year ran out 30 days ago.
			{600 * 24 * time.Hour, nil, map[string]int{"client_counters": 1, "accounts": 1, "billing_records": 0}},
			// Past 7 years: the billing record goes, detached from its
			// erased account all this time.
			{7 * 366 * 24 * time.Hour, nil, map[string]int{"billing_records": 1}},
		}
		for i, st := range steps {
			clk.Add(st.advance)
			if st.touch != nil {
				login := store.Session{TokenHash: fmt.Appendf(nil, "login-%d", i), AccountID: st.touch.ID, ExpiresAt: clk.Now().Add(time.Hour)}
				if err := s.CreateSession(ctx, login, clk.Now()); err != nil {
					t.Fatal(err)
				}
			}
			ds, err := sw.Run(ctx)
			if err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			got := counts(ds)
			for what, n := range st.want {
				if got[what] != n {
					t.Errorf("step %d (%s later): deleted %d %s, want %d (all: %v)", i, clk.Now().Sub(start), got[what], what, n, got)
				}
			}
		}
		if _, err := s.AccountByID(ctx, idle.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("idle account still there: %v", err)
		}
		if _, err := s.AccountByID(ctx, used.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("used account still there after its period: %v", err)
		}
		if _, err := s.AccountByID(ctx, held.ID); err != nil {
			t.Errorf("account on legal hold deleted: %v", err)
		}
		if ts, err := s.AccountTickets(ctx, held.ID); err != nil || len(ts) != 1 || len(ts[0].Messages) != 1 {
			t.Errorf("held account's tickets = %+v, %v; want kept", ts, err)
		}
		if _, err := s.AccountByID(ctx, paid.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("paid account a long time after its paid time: %v", err)
		}
		// Releasing the hold lets the sweeper delete.
		hold := false
		if err := s.UpdateAccount(ctx, held.ID, store.AccountUpdate{LegalHold: &hold}); err != nil {
			t.Fatal(err)
		}
		ds, err := sw.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := counts(ds); got["accounts"] != 1 {
			t.Errorf("after releasing the hold: %v", got)
		}
		if ts, err := s.Tickets(ctx, ""); err != nil || len(ts) != 0 {
			t.Errorf("tickets left after releasing the hold: %+v, %v", ts, err)
		}
	})
}

// failingStore fails every rule, to show the sweeper covers each one.
type failingStore struct{ calls map[string]bool }

var errFail = errors.New("fail")

func (f *failingStore) DeleteUnusedAccounts(context.Context, time.Time) (int, error) {
	f.calls["accounts"] = true
	return 0, nil
}
func (f *failingStore) DeleteExpiredSessions(context.Context, time.Time) (int, error) {
	f.calls["sessions"] = true
	return 0, nil
}
func (f *failingStore) DeleteExpiredRecoveryTokens(context.Context, time.Time) (int, error) {
	f.calls["recovery"] = true
	return 0, nil
}
func (f *failingStore) DeleteSupportBefore(context.Context, time.Time) (int, int, error) {
	f.calls["support"] = true
	return 0, 0, nil
}
func (f *failingStore) DeleteMailBefore(context.Context, time.Time) (int, error) {
	f.calls["mail"] = true
	return 0, nil
}
func (f *failingStore) DeleteClientCountsBefore(context.Context, string) (int, error) {
	f.calls["counters"] = true
	return 0, nil
}
func (f *failingStore) DeleteBillingBefore(context.Context, time.Time) (int, error) {
	f.calls["billing"] = true
	return 0, nil
}
func (f *failingStore) PrunePeerHistory(context.Context, time.Time) (int, error) {
	f.calls["peers"] = true
	return 0, errFail
}

// TestSweeperRunsEveryRule checks that each rule of the inventory is known
// to the sweeper, and that an error stops it and is reported.
func TestSweeperRunsEveryRule(t *testing.T) {
	f := &failingStore{calls: map[string]bool{}}
	sw := &privacy.Sweeper{Store: f, Periods: privacy.DefaultPeriods}
	_, err := sw.Run(t.Context())
	if !errors.Is(err, errFail) {
		t.Fatalf("Run = %v, want the store's error", err)
	}
	for _, k := range []string{"accounts", "sessions", "recovery", "support", "mail", "counters", "billing", "peers"} {
		if !f.calls[k] {
			t.Errorf("rule for %s not run", k)
		}
	}
}
