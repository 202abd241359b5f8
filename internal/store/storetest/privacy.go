package storetest

import (
	"encoding/hex"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"veil/internal/store"
)

// The privacy engine's methods: policy versions, accounts by email and
// last use, the export of an account's rows, retention deletions, the mail
// outbox, support tickets and client counters.
func testPrivacy(t *testing.T, open func(testing.TB) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open func(testing.TB) store.Store)
	}{
		{"PolicyVersions", testPolicyVersions},
		{"AccountsByEmail", testAccountsByEmail},
		{"LastUse", testLastUse},
		{"AccountRows", testAccountRows},
		{"DeleteUnusedAccounts", testDeleteUnusedAccounts},
		{"PrunePeerHistory", testPrunePeerHistory},
		{"MailOutbox", testMailOutbox},
		{"Tickets", testTickets},
		{"SupportRetention", testSupportRetention},
		{"ClientCounters", testClientCounters},
		{"DeleteAccountCascade", testDeleteAccountCascade},
	}
	// Each subtest has a database of its own; in parallel, creating them
	// on PostgreSQL overlaps.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open)
		})
	}
}

// t0 is the privacy tests' fixed time: at the stored precision, and away
// from midnight so that keeping only the day shows.
var t0 = time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)

// farFuture is a paid time beyond any clock the tests run under, so that
// the store's own clock finds the account active.
var farFuture = time.Date(2124, 1, 1, 0, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// midnight is the UTC day of t.
func midnight(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// createAccount stores a, filling in a code hash and a plan when missing.
func createAccount(tb testing.TB, s store.Store, a store.Account) *store.Account {
	tb.Helper()
	if a.CodeHash == nil {
		a.CodeHash = Random(tb, 32)
	}
	if a.Plan == "" {
		a.Plan = store.PlanFree
	}
	if _, err := s.CreateAccount(tb.Context(), &a); err != nil {
		tb.Fatalf("CreateAccount: %v", err)
	}
	return &a
}

func accountByID(tb testing.TB, s store.Store, id int64) *store.Account {
	tb.Helper()
	a, err := s.AccountByID(tb.Context(), id)
	if err != nil {
		tb.Fatalf("AccountByID(%d): %v", id, err)
	}
	return a
}

// newSession opens a session at at, which becomes the account's last use
// unless a later one is stored.
func newSession(tb testing.TB, s store.Store, accountID int64, at time.Time) []byte {
	tb.Helper()
	token := Random(tb, 32)
	if err := s.CreateSession(tb.Context(), store.Session{TokenHash: token, AccountID: accountID, ExpiresAt: farFuture}, at); err != nil {
		tb.Fatalf("CreateSession: %v", err)
	}
	return token
}

func queueMail(tb testing.TB, s store.Store, m store.Mail) store.Mail {
	tb.Helper()
	if m.Kind == "" {
		m.Kind = store.MailTransactional
	}
	if m.To == "" {
		m.To = "someone@example.com"
	}
	id, err := s.QueueMail(tb.Context(), &m)
	if err != nil {
		tb.Fatalf("QueueMail: %v", err)
	}
	if id == 0 || m.ID != id {
		tb.Fatalf("QueueMail returned id %d, filled in %d", id, m.ID)
	}
	return m
}

func createTicket(tb testing.TB, s store.Store, t store.Ticket, first store.TicketMessage) store.Ticket {
	tb.Helper()
	if t.TokenHash == nil {
		t.TokenHash = Random(tb, 32)
	}
	if t.Subject == "" {
		t.Subject = "subject"
	}
	if first.Body == "" {
		first.Body = "first message"
	}
	id, err := s.CreateTicket(tb.Context(), &t, first)
	if err != nil {
		tb.Fatalf("CreateTicket: %v", err)
	}
	if id == 0 || t.ID != id {
		tb.Fatalf("CreateTicket returned id %d, filled in %d", id, t.ID)
	}
	return t
}

func addMessage(tb testing.TB, s store.Store, ticketID int64, m store.TicketMessage, status string) {
	tb.Helper()
	if err := s.AddTicketMessage(tb.Context(), ticketID, m, status); err != nil {
		tb.Fatalf("AddTicketMessage(%d): %v", ticketID, err)
	}
}

func ticketByID(tb testing.TB, s store.Store, id int64) *store.Ticket {
	tb.Helper()
	tk, err := s.Ticket(tb.Context(), id)
	if err != nil {
		tb.Fatalf("Ticket(%d): %v", id, err)
	}
	return tk
}

func accountIDs(as []store.Account) []int64 {
	ids := []int64{}
	for _, a := range as {
		ids = append(ids, a.ID)
	}
	return ids
}

func mailIDs(ms []store.Mail) []int64 {
	ids := []int64{}
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	return ids
}

func ticketIDs(ts []store.Ticket) []int64 {
	ids := []int64{}
	for _, t := range ts {
		ids = append(ids, t.ID)
	}
	return ids
}

// messageBodies lists a ticket's messages as "op:" or "user:" and body.
func messageBodies(ms []store.TicketMessage) []string {
	out := []string{}
	for _, m := range ms {
		who := "user:"
		if m.FromOperator {
			who = "op:"
		}
		out = append(out, who+m.Body)
	}
	return out
}

// sameTime reports whether got is want's instant, in UTC.
func sameTime(got, want time.Time) bool {
	return got.Equal(want) && (got.IsZero() || got.Location() == time.UTC)
}

func testPolicyVersions(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	ctx := t.Context()
	if vs, err := s.PolicyVersions(ctx); err != nil || len(vs) != 0 {
		t.Fatalf("PolicyVersions on an empty store = %v, %v", vs, err)
	}
	ps := []*store.PolicyVersion{
		// Another zone: stored and returned as the same instant in UTC.
		{PublishedAt: t0.In(time.FixedZone("UTC+2", 2*3600)), Prose: "We keep nothing.", Body: "# Policy\n\nWe keep nothing — ünïcode ✓\n"},
		{PublishedAt: t0.Add(30 * day), Prose: "", Body: strings.Repeat("inventory line\n", 5000)},
		// No time: the store's clock.
		{Prose: "third", Body: "third body"},
	}
	for i, p := range ps {
		id, err := s.PublishPolicy(ctx, p)
		if err != nil {
			t.Fatalf("PublishPolicy %d: %v", i, err)
		}
		if id == 0 || p.ID != id {
			t.Fatalf("PublishPolicy %d returned id %d, filled in %d", i, id, p.ID)
		}
	}
	if ps[2].PublishedAt.IsZero() {
		t.Errorf("PublishPolicy left a zero time as it was")
	}
	vs, err := s.PolicyVersions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != len(ps) {
		t.Fatalf("PolicyVersions = %d versions, want %d", len(vs), len(ps))
	}
	for i, p := range ps {
		v := vs[i]
		if v.ID != p.ID || !sameTime(v.PublishedAt, p.PublishedAt) || v.Prose != p.Prose || v.Body != p.Body {
			t.Errorf("version %d = {%d %v %q %d bytes}, want {%d %v %q %d bytes}",
				i, v.ID, v.PublishedAt, v.Prose, len(v.Body), p.ID, p.PublishedAt, p.Prose, len(p.Body))
		}
	}
	if !sameTime(vs[0].PublishedAt, t0) {
		t.Errorf("first version published at %v, want %v", vs[0].PublishedAt, t0)
	}
}

func testAccountsByEmail(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	ctx := t.Context()
	if as, err := s.AccountsWithEmail(ctx); err != nil || len(as) != 0 {
		t.Fatalf("AccountsWithEmail on an empty store = %v, %v", as, err)
	}
	alice1 := createAccount(t, s, store.Account{Email: "Alice@Example.com"})
	createAccount(t, s, store.Account{}) // no email
	bob := createAccount(t, s, store.Account{Email: "bob@example.com"})
	alice2 := createAccount(t, s, store.Account{Email: "alice@example.com"})
	zoe := createAccount(t, s, store.Account{Email: "Zoë@example.com"})
	elise := createAccount(t, s, store.Account{Email: "ÉLISE@example.com"})

	tests := []struct {
		email string
		want  []int64
	}{
		{"alice@example.com", []int64{alice1.ID, alice2.ID}},
		{"ALICE@EXAMPLE.COM", []int64{alice1.ID, alice2.ID}},
		{"Bob@Example.Com", []int64{bob.ID}},
		{"Zoë@example.com", []int64{zoe.ID}},
		{"ZOË@EXAMPLE.COM", []int64{zoe.ID}},
		{"élise@example.com", []int64{elise.ID}}, // case beyond ASCII, stored in upper case
		{"Élise@Example.com", []int64{elise.ID}},
		{"carol@example.com", nil},
		{"alice@example", nil}, // no prefix match
		{"%", nil},             // no pattern match
		{"", nil},              // the accounts without email are not found by ""
	}
	for _, tt := range tests {
		as, err := s.AccountsByEmail(ctx, tt.email)
		if err != nil {
			t.Fatalf("AccountsByEmail(%q): %v", tt.email, err)
		}
		if got := accountIDs(as); !slices.Equal(got, append([]int64{}, tt.want...)) {
			t.Errorf("AccountsByEmail(%q) = %v, want %v", tt.email, got, tt.want)
		}
		for _, a := range as {
			if !strings.EqualFold(a.Email, tt.email) || len(a.CodeHash) == 0 {
				t.Errorf("AccountsByEmail(%q) gave account %+v", tt.email, a)
			}
		}
	}
	as, err := s.AccountsWithEmail(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := accountIDs(as), []int64{alice1.ID, bob.ID, alice2.ID, zoe.ID, elise.ID}; !slices.Equal(got, want) {
		t.Errorf("AccountsWithEmail = %v, want %v", got, want)
	}
	// Clearing the email takes the account out of both.
	none := ""
	if err := s.UpdateAccount(ctx, bob.ID, store.AccountUpdate{Email: &none}); err != nil {
		t.Fatal(err)
	}
	if as, err := s.AccountsByEmail(ctx, "bob@example.com"); err != nil || len(as) != 0 {
		t.Errorf("AccountsByEmail after clearing the email = %v, %v", accountIDs(as), err)
	}
	if as, err := s.AccountsWithEmail(ctx); err != nil || slices.Contains(accountIDs(as), bob.ID) {
		t.Errorf("AccountsWithEmail after clearing bob's email = %v, %v", accountIDs(as), err)
	}
}

func testLastUse(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	ctx := t.Context()
	d0 := midnight(t0)

	// CreateAccount keeps only the day of a given last use too.
	created := createAccount(t, s, store.Account{LastUsed: t0})
	if got := accountByID(t, s, created.ID).LastUsed; !sameTime(got, d0) {
		t.Errorf("LastUsed given at creation stored as %v, want %v", got, d0)
	}

	a := createAccount(t, s, store.Account{})
	other := createAccount(t, s, store.Account{})
	if got := accountByID(t, s, a.ID).LastUsed; !got.IsZero() {
		t.Fatalf("LastUsed of a new account = %v, want zero", got)
	}
	steps := []struct {
		name string
		at   time.Time
		want time.Time
	}{
		{"first use", t0, d0},
		{"later the same day", t0.Add(16 * time.Hour), d0},
		{"next day", t0.Add(day), d0.Add(day)},
		// 23:30 at UTC-5 is 04:30 the next day in UTC.
		{"day of UTC, not of the zone", time.Date(2024, 5, 7, 23, 30, 0, 0, time.FixedZone("UTC-5", -5*3600)), d0.Add(2 * day)},
		{"an earlier use does not move it back", t0, d0.Add(2 * day)},
	}
	for _, st := range steps {
		if err := s.CreateSession(ctx, store.Session{TokenHash: Random(t, 32), AccountID: a.ID, ExpiresAt: farFuture}, st.at); err != nil {
			t.Fatalf("%s: CreateSession: %v", st.name, err)
		}
		if got := accountByID(t, s, a.ID).LastUsed; !sameTime(got, st.want) {
			t.Errorf("%s: LastUsed = %v, want %v", st.name, got, st.want)
		}
	}
	if got := accountByID(t, s, other.ID).LastUsed; !got.IsZero() {
		t.Errorf("a session of one account set another's LastUsed to %v", got)
	}
}

// accountTables are the tables whose rows belong to an account: the
// account itself, those with an account_id, and support_messages through
// their ticket.
func accountTables(schema map[string][]string) []string {
	var ts []string
	for table, cols := range schema {
		if table == "accounts" || table == "support_messages" || table == "affiliate_ledger" || slices.Contains(cols, "account_id") {
			ts = append(ts, table)
		}
	}
	slices.Sort(ts)
	return ts
}

func testAccountRows(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	ctx := t.Context()
	a := createAccount(t, s, store.Account{Email: "a@example.com", Plan: store.PlanPremium, PaidUntil: farFuture, MarketingConsent: true, CreatedAt: t0, Lang: "fr", LastUsed: t0.Add(day)})
	other := createAccount(t, s, store.Account{Email: "b@example.com", PaidUntil: farFuture})
	d1, d2 := newDevice(t, s, a.ID), newDevice(t, s, a.ID)
	newDevice(t, s, other.ID)
	tokens := []string{hex.EncodeToString(newSession(t, s, a.ID, t0)), hex.EncodeToString(newSession(t, s, a.ID, t0))}
	newSession(t, s, other.ID, t0)
	tk1 := createTicket(t, s, store.Ticket{AccountID: a.ID, Email: a.Email, CreatedAt: t0}, store.TicketMessage{Body: "help"})
	tk2 := createTicket(t, s, store.Ticket{AccountID: a.ID, CreatedAt: t0.Add(time.Hour)}, store.TicketMessage{Body: "again"})
	addMessage(t, s, tk1.ID, store.TicketMessage{FromOperator: true, Body: "answer", CreatedAt: t0.Add(2 * time.Hour)}, store.TicketAnswered)
	createTicket(t, s, store.Ticket{AccountID: other.ID, CreatedAt: t0}, store.TicketMessage{})
	createTicket(t, s, store.Ticket{CreatedAt: t0}, store.TicketMessage{})
	m := queueMail(t, s, store.Mail{AccountID: a.ID, To: a.Email, Subject: "receipt", Body: "paid", CreatedAt: t0})
	queueMail(t, s, store.Mail{AccountID: other.ID, CreatedAt: t0})
	queueMail(t, s, store.Mail{CreatedAt: t0})

	rows, err := s.AccountRows(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	schema, err := s.Schema(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantRows := map[string]int{"accounts": 1, "devices": 2, "sessions": 2, "support_tickets": 2, "support_messages": 3, "mail_outbox": 1}
	// A table added later that holds account rows fails here until the
	// export (and this test) know it.
	var tables []string
	for table := range rows {
		tables = append(tables, table)
	}
	slices.Sort(tables)
	if want := accountTables(schema); !slices.Equal(tables, want) {
		t.Errorf("AccountRows tables = %v, want every table holding account rows: %v", tables, want)
	}
	for table, n := range wantRows {
		recs := rows[table]
		if len(recs) != n {
			t.Errorf("%s: %d rows, want %d: %v", table, len(recs), n, recs)
		}
		cols := slices.Sorted(slices.Values(schema[table]))
		for _, r := range recs {
			var got []string
			for c := range r {
				got = append(got, c)
			}
			slices.Sort(got)
			if !slices.Equal(got, cols) {
				t.Errorf("%s row has columns %v, want all of %v", table, got, cols)
			}
			if v, ok := r["account_id"]; ok && v != a.ID {
				t.Errorf("%s row of account %v (%T) in the export of %d", table, v, v, a.ID)
			}
		}
	}

	// One form on both databases: ids int64, times UTC time.Time, flags
	// bool, hashes hex, NULL nil.
	acc := rows["accounts"][0]
	for _, c := range []struct {
		col  string
		want any
	}{
		{"id", a.ID},
		{"code_hash", hex.EncodeToString(a.CodeHash)},
		{"email", "a@example.com"},
		{"plan", store.PlanPremium},
		{"paid_until", farFuture},
		{"trial_until", nil},
		{"marketing_consent", true},
		{"restricted", false},
		{"legal_hold", false},
		{"last_used", midnight(t0.Add(day))},
		{"created_at", t0},
		{"lang", "fr"},
	} {
		got := acc[c.col]
		if want, ok := c.want.(time.Time); ok {
			if g, ok := got.(time.Time); !ok || !sameTime(g, want) {
				t.Errorf("accounts.%s = %v (%T), want %v", c.col, got, got, want)
			}
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("accounts.%s = %v (%T), want %v (%T)", c.col, got, got, c.want, c.want)
		}
	}
	var gotKeys, gotTokens []string
	for _, r := range rows["devices"] {
		gotKeys = append(gotKeys, fmt.Sprint(r["public_key"]))
		if r["in_map"] != true {
			t.Errorf("devices.in_map = %v (%T), want true", r["in_map"], r["in_map"])
		}
		if _, ok := r["created_at"].(time.Time); !ok {
			t.Errorf("devices.created_at = %T, want time.Time", r["created_at"])
		}
	}
	if !slices.Equal(sorted(gotKeys...), sorted(d1.PublicKey, d2.PublicKey)) {
		t.Errorf("exported device keys %v, want %v", gotKeys, []string{d1.PublicKey, d2.PublicKey})
	}
	for _, r := range rows["sessions"] {
		gotTokens = append(gotTokens, fmt.Sprint(r["token_hash"]))
	}
	if !slices.Equal(sorted(gotTokens...), sorted(tokens...)) {
		t.Errorf("exported session hashes %v, want %v", gotTokens, tokens)
	}
	var exported []any
	for _, r := range rows["support_tickets"] {
		exported = append(exported, r["id"])
	}
	if want := []any{tk1.ID, tk2.ID}; !reflect.DeepEqual(exported, want) {
		t.Errorf("exported ticket ids %v, want %v", exported, want)
	}
	var msgs []string
	for _, r := range rows["support_messages"] {
		msgs = append(msgs, fmt.Sprintf("%v:%v:%v", r["ticket_id"], r["from_operator"], r["body"]))
	}
	if want := []string{
		fmt.Sprintf("%d:false:help", tk1.ID), fmt.Sprintf("%d:false:again", tk2.ID), fmt.Sprintf("%d:true:answer", tk1.ID),
	}; !slices.Equal(msgs, want) {
		t.Errorf("exported messages %v, want %v", msgs, want)
	}
	if mr := rows["mail_outbox"]; len(mr) == 1 {
		if mr[0]["id"] != m.ID || mr[0]["subject"] != "receipt" || mr[0]["to_addr"] != a.Email {
			t.Errorf("exported mail %v, want id %d", mr[0], m.ID)
		}
		if g, ok := mr[0]["next_attempt_at"].(time.Time); !ok || !sameTime(g, t0) {
			t.Errorf("mail_outbox.next_attempt_at = %v (%T), want %v", mr[0]["next_attempt_at"], mr[0]["next_attempt_at"], t0)
		}
	}

	// An account with nothing but itself: every table present, empty.
	bare := createAccount(t, s, store.Account{})
	rows, err = s.AccountRows(ctx, bare.ID)
	if err != nil {
		t.Fatal(err)
	}
	for table := range wantRows {
		recs, ok := rows[table]
		want := 0
		if table == "accounts" {
			want = 1
		}
		if !ok || len(recs) != want {
			t.Errorf("bare account: %s = %v (present %v), want %d rows", table, recs, ok, want)
		}
	}

	_, err = s.AccountRows(ctx, other.ID+1000)
	wantErr(t, "AccountRows of an unknown account", err, store.ErrNotFound)
}

func testDeleteUnusedAccounts(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	holdTombstones(t, s)
	ctx := t.Context()
	cutoff := t0
	old := cutoff.Add(-365 * day)
	tests := []struct {
		name  string
		acct  store.Account
		touch time.Time // zero: never used
		gone  bool
	}{
		{"never paid or used, created before", store.Account{CreatedAt: old}, time.Time{}, true},
		{"created at the cutoff", store.Account{CreatedAt: cutoff}, time.Time{}, false},
		{"created after", store.Account{CreatedAt: cutoff.Add(time.Second)}, time.Time{}, false},
		{"paid until before", store.Account{CreatedAt: old, PaidUntil: cutoff.Add(-time.Microsecond)}, time.Time{}, true},
		{"paid until the cutoff", store.Account{CreatedAt: old, PaidUntil: cutoff}, time.Time{}, false},
		{"paid until after", store.Account{CreatedAt: old, PaidUntil: cutoff.Add(30 * day)}, time.Time{}, false},
		{"trial until before", store.Account{CreatedAt: old, TrialUntil: cutoff.Add(-day)}, time.Time{}, true},
		{"trial until after", store.Account{CreatedAt: old, TrialUntil: cutoff.Add(time.Second)}, time.Time{}, false},
		{"used days before", store.Account{CreatedAt: old}, cutoff.Add(-2 * day), true},
		// Only the day is kept: a use earlier on the cutoff's day counts
		// from its midnight, before the cutoff.
		{"used on the cutoff's day", store.Account{CreatedAt: old}, cutoff, true},
		{"used the next day", store.Account{CreatedAt: old}, cutoff.Add(day), false},
		{"everything after", store.Account{CreatedAt: old, PaidUntil: farFuture, TrialUntil: farFuture}, cutoff.Add(day), false},
		{"on legal hold", store.Account{CreatedAt: old, LegalHold: true}, time.Time{}, false},
		{"on legal hold, paid and used before", store.Account{CreatedAt: old, PaidUntil: cutoff.Add(-day), LegalHold: true}, cutoff.Add(-day), false},
	}
	ids := make([]int64, len(tests))
	wantGone := 0
	for i, tt := range tests {
		acct := tt.acct
		acct.LastUsed = tt.touch
		a := createAccount(t, s, acct)
		ids[i] = a.ID
		if tt.gone {
			wantGone++
		}
	}

	// An unused account with everything that cascades: its device is still
	// in the peer map (SyncPeerActivity has not run since its paid time
	// was moved back), so deleting it must take the device out.
	full := createAccount(t, s, store.Account{CreatedAt: old, PaidUntil: farFuture, Email: "full@example.com"})
	dev := newDevice(t, s, full.ID)
	token := newSession(t, s, full.ID, old)
	tk := createTicket(t, s, store.Ticket{AccountID: full.ID, CreatedAt: old}, store.TicketMessage{})
	queueMail(t, s, store.Mail{AccountID: full.ID, CreatedAt: old})
	paid := cutoff.Add(-day)
	if err := s.UpdateAccount(ctx, full.ID, store.AccountUpdate{PaidUntil: &paid}); err != nil {
		t.Fatal(err)
	}
	wantGone++
	// A held account's device stays in the map.
	held := createAccount(t, s, store.Account{CreatedAt: old, PaidUntil: farFuture, LegalHold: true})
	heldDev := newDevice(t, s, held.ID)
	if err := s.UpdateAccount(ctx, held.ID, store.AccountUpdate{PaidUntil: &paid}); err != nil {
		t.Fatal(err)
	}

	v := version(t, s)
	n, err := s.DeleteUnusedAccounts(ctx, cutoff)
	if err != nil {
		t.Fatal(err)
	}
	if n != wantGone {
		t.Errorf("DeleteUnusedAccounts = %d, want %d", n, wantGone)
	}
	for i, tt := range tests {
		_, err := s.AccountByID(ctx, ids[i])
		switch {
		case tt.gone && err == nil:
			t.Errorf("%s: account kept", tt.name)
		case !tt.gone && err != nil:
			t.Errorf("%s: account gone (%v)", tt.name, err)
		}
	}
	_, err = s.AccountByID(ctx, full.ID)
	wantErr(t, "unused account with devices", err, store.ErrNotFound)
	pc := peersSince(t, s, v)
	if pc.Version != v+1 || !slices.Equal(pc.Removed, []string{dev.PublicKey}) {
		t.Errorf("peer map after deleting unused accounts = %+v, want version %d removing %s", pc, v+1, dev.PublicKey)
	}
	if got := keys(peersSince(t, s, 0).Peers); !slices.Equal(got, []string{heldDev.PublicKey}) {
		t.Errorf("peer map = %v, want only the held account's device", got)
	}
	_, err = s.SessionByTokenHash(ctx, token, t0)
	wantErr(t, "session of a deleted unused account", err, store.ErrInvalidSession)
	_, err = s.Ticket(ctx, tk.ID)
	wantErr(t, "ticket of a deleted unused account", err, store.ErrNotFound)
	if ms, err := s.AccountMail(ctx, full.ID); err != nil || len(ms) != 0 {
		t.Errorf("mail of a deleted unused account: %v, %v", mailIDs(ms), err)
	}

	// Idempotent: nothing more to delete, and the map does not move.
	if n, err := s.DeleteUnusedAccounts(ctx, cutoff); err != nil || n != 0 {
		t.Errorf("DeleteUnusedAccounts again = %d, %v; want 0", n, err)
	}
	if got := version(t, s); got != v+1 {
		t.Errorf("version after a deletion with no devices = %d, want %d", got, v+1)
	}
	// Lifting the hold lets retention take the held accounts.
	off := false
	for _, id := range []int64{held.ID, ids[len(ids)-1]} {
		if err := s.UpdateAccount(ctx, id, store.AccountUpdate{LegalHold: &off}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.DeleteUnusedAccounts(ctx, cutoff); err != nil || n != 2 {
		t.Errorf("DeleteUnusedAccounts after lifting holds = %d, %v; want 2", n, err)
	}
}

func testPrunePeerHistory(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	holdTombstones(t, s)
	ctx := t.Context()
	if n, err := s.PrunePeerHistory(ctx, farFuture); err != nil || n != 0 {
		t.Fatalf("PrunePeerHistory with no history = %d, %v", n, err)
	}
	a := createAccount(t, s, store.Account{PaidUntil: farFuture})
	gone, keep := newDevice(t, s, a.ID), newDevice(t, s, a.ID)
	v := version(t, s)
	if err := s.DeleteDevice(ctx, a.ID, gone.ID); err != nil {
		t.Fatal(err)
	}
	// The store stamps removals with its own clock: any real time lies
	// between these two cutoffs.
	if n, err := s.PrunePeerHistory(ctx, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil || n != 0 {
		t.Errorf("PrunePeerHistory before the removal = %d, %v; want 0", n, err)
	}
	if pc := peersSince(t, s, v); pc.Full || !slices.Equal(pc.Removed, []string{gone.PublicKey}) {
		t.Errorf("delta after pruning nothing = %+v", pc)
	}
	if n, err := s.PrunePeerHistory(ctx, farFuture); err != nil || n != 1 {
		t.Errorf("PrunePeerHistory after the removal = %d, %v; want 1", n, err)
	}
	// A gateway behind the pruned history gets the full map.
	if pc := peersSince(t, s, v); !pc.Full || !slices.Equal(keys(pc.Peers), []string{keep.PublicKey}) || len(pc.Removed) != 0 {
		t.Errorf("changes since a pruned version = %+v, want the full map", pc)
	}
	cur := version(t, s)
	if pc := peersSince(t, s, cur); pc.Full || len(pc.Peers) != 0 || len(pc.Removed) != 0 {
		t.Errorf("changes since the current version after pruning = %+v, want none", pc)
	}
	if n, err := s.PrunePeerHistory(ctx, farFuture); err != nil || n != 0 {
		t.Errorf("PrunePeerHistory again = %d, %v; want 0", n, err)
	}
}

func testMailOutbox(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	ctx := t.Context()
	a := createAccount(t, s, store.Account{Email: "a@example.com"})
	b := createAccount(t, s, store.Account{Email: "b@example.com"})
	if ms, err := s.DueMail(ctx, farFuture, 10); err != nil || len(ms) != 0 {
		t.Fatalf("DueMail on an empty outbox = %v, %v", ms, err)
	}
	if ms, err := s.AccountMail(ctx, a.ID); err != nil || len(ms) != 0 {
		t.Fatalf("AccountMail on an empty outbox = %v, %v", ms, err)
	}

	m1 := queueMail(t, s, store.Mail{Kind: store.MailTransactional, AccountID: a.ID, To: a.Email, Subject: "Welcome", Body: "Hello ✓", CreatedAt: t0})
	m2 := queueMail(t, s, store.Mail{Kind: store.MailMarketing, AccountID: b.ID, To: b.Email, Subject: "News", Body: "n", CreatedAt: t0.Add(time.Minute)})
	m3 := queueMail(t, s, store.Mail{To: "nobody@example.com", Subject: "Ticket", Body: "t", CreatedAt: t0.Add(2 * time.Minute)})
	m4 := queueMail(t, s, store.Mail{AccountID: a.ID, To: a.Email, Subject: "Later", Body: "l", CreatedAt: t0.Add(3 * time.Minute), NextAt: t0.Add(time.Hour)})

	due := func(now time.Time, limit int) []store.Mail {
		t.Helper()
		ms, err := s.DueMail(ctx, now, limit)
		if err != nil {
			t.Fatalf("DueMail(%v, %d): %v", now, limit, err)
		}
		return ms
	}
	for _, tt := range []struct {
		name  string
		now   time.Time
		limit int
		want  []int64
	}{
		{"before any", t0.Add(-time.Microsecond), 10, []int64{}},
		{"due at creation", t0, 10, []int64{m1.ID}},
		{"oldest first", t0.Add(30 * time.Minute), 10, []int64{m1.ID, m2.ID, m3.ID}},
		{"limit", t0.Add(30 * time.Minute), 2, []int64{m1.ID, m2.ID}},
		{"limit zero", t0.Add(30 * time.Minute), 0, []int64{}},
		{"a deferred message at its time", t0.Add(time.Hour), 10, []int64{m1.ID, m2.ID, m3.ID, m4.ID}},
	} {
		if got := mailIDs(due(tt.now, tt.limit)); !slices.Equal(got, tt.want) {
			t.Errorf("%s: DueMail = %v, want %v", tt.name, got, tt.want)
		}
	}

	// Every field comes back as queued.
	all := due(farFuture, 10)
	for i, want := range []store.Mail{m1, m2, m3, m4} {
		if i >= len(all) {
			break
		}
		got := all[i]
		if got.ID != want.ID || got.Kind != want.Kind || got.AccountID != want.AccountID || got.To != want.To ||
			got.Subject != want.Subject || got.Body != want.Body || got.Attempts != 0 ||
			!sameTime(got.NextAt, want.NextAt) || !sameTime(got.CreatedAt, want.CreatedAt) {
			t.Errorf("stored mail %+v, want %+v", got, want)
		}
	}
	if !sameTime(all[0].NextAt, t0) {
		t.Errorf("a message queued without a next attempt is due at %v, want its creation %v", all[0].NextAt, t0)
	}

	for _, tt := range []struct {
		account int64
		want    []int64
	}{
		{a.ID, []int64{m1.ID, m4.ID}},
		{b.ID, []int64{m2.ID}},
		{b.ID + 1000, []int64{}},
	} {
		ms, err := s.AccountMail(ctx, tt.account)
		if err != nil {
			t.Fatal(err)
		}
		if got := mailIDs(ms); !slices.Equal(got, tt.want) {
			t.Errorf("AccountMail(%d) = %v, want %v", tt.account, got, tt.want)
		}
	}

	// A failed attempt moves the next one; a second failure counts on.
	for _, r := range []struct {
		attempts int
		next     time.Time
	}{{1, t0.Add(2 * time.Hour)}, {2, t0.Add(3 * time.Hour)}} {
		if err := s.RetryMail(ctx, m1.ID, r.attempts, r.next); err != nil {
			t.Fatal(err)
		}
		if got := mailIDs(due(r.next.Add(-time.Microsecond), 10)); slices.Contains(got, m1.ID) {
			t.Errorf("retried message due before its next attempt: %v", got)
		}
		ms := due(r.next, 10)
		i := slices.Index(mailIDs(ms), m1.ID)
		if i < 0 {
			t.Fatalf("retried message not due at its next attempt %v", r.next)
		}
		if ms[i].Attempts != r.attempts || !sameTime(ms[i].NextAt, r.next) || !sameTime(ms[i].CreatedAt, t0) {
			t.Errorf("retried message = %+v, want %d attempts, next %v", ms[i], r.attempts, r.next)
		}
		if got := sorted64(mailIDs(ms)); !slices.Equal(got, []int64{m1.ID, m2.ID, m3.ID, m4.ID}) {
			t.Errorf("due after retry = %v", got)
		}
	}

	// Deleting is idempotent and ignores unknown messages.
	for _, id := range []int64{m2.ID, m2.ID, m4.ID + 1000} {
		if err := s.DeleteMail(ctx, id); err != nil {
			t.Errorf("DeleteMail(%d): %v", id, err)
		}
	}
	if got := mailIDs(due(farFuture, 10)); slices.Contains(got, m2.ID) || len(got) != 3 {
		t.Errorf("outbox after DeleteMail = %v", got)
	}

	// Messages queued before the cutoff go; one queued at it stays.
	if n, err := s.DeleteMailBefore(ctx, m3.CreatedAt); err != nil || n != 1 {
		t.Errorf("DeleteMailBefore = %d, %v; want 1", n, err)
	}
	if n, err := s.DeleteMailBefore(ctx, m3.CreatedAt); err != nil || n != 0 {
		t.Errorf("DeleteMailBefore again = %d, %v; want 0", n, err)
	}
	if got := sorted64(mailIDs(due(farFuture, 10))); !slices.Equal(got, []int64{m3.ID, m4.ID}) {
		t.Errorf("outbox after DeleteMailBefore = %v, want %v", got, []int64{m3.ID, m4.ID})
	}

	// Refused messages leave nothing behind.
	for _, m := range []store.Mail{
		{Kind: store.MailTransactional, AccountID: b.ID + 1000, To: "x@example.com"},
		{Kind: "bulk", To: "x@example.com"},
		{Kind: store.MailTransactional},
	} {
		if _, err := s.QueueMail(ctx, &m); err == nil {
			t.Errorf("QueueMail(%+v) accepted", m)
		}
	}
	if got := mailIDs(due(farFuture, 10)); len(got) != 2 {
		t.Errorf("outbox after refused messages = %v", got)
	}
}

func sorted64(ids []int64) []int64 {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return ids
}

func testTickets(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	ctx := t.Context()
	a := createAccount(t, s, store.Account{Email: "a@example.com"})
	b := createAccount(t, s, store.Account{})
	if ts, err := s.Tickets(ctx, ""); err != nil || len(ts) != 0 {
		t.Fatalf("Tickets on an empty store = %v, %v", ts, err)
	}

	h2 := Random(t, 32)
	t1 := createTicket(t, s, store.Ticket{AccountID: a.ID, Email: a.Email, Subject: "Cannot connect", CreatedAt: t0},
		store.TicketMessage{Body: "Hello", CreatedAt: t0})
	// Without an account, and with the message's time taken from the ticket.
	t2 := createTicket(t, s, store.Ticket{TokenHash: h2, Subject: "Question", CreatedAt: t0.Add(time.Hour), Lang: "tr"},
		store.TicketMessage{Body: "Do you log?"})
	t3 := createTicket(t, s, store.Ticket{AccountID: b.ID, Subject: "Refund", CreatedAt: t0.Add(2 * time.Hour)},
		store.TicketMessage{Body: "Please", CreatedAt: t0.Add(2 * time.Hour)})

	got := ticketByID(t, s, t1.ID)
	if got.AccountID != a.ID || got.Email != a.Email || !slices.Equal(got.TokenHash, t1.TokenHash) || got.Subject != "Cannot connect" ||
		got.Status != store.TicketOpen || !sameTime(got.CreatedAt, t0) || !sameTime(got.UpdatedAt, t0) || got.Lang != "" {
		t.Errorf("Ticket = %+v, want %+v", got, t1)
	}
	if len(got.Messages) != 1 || got.Messages[0].ID == 0 || got.Messages[0].FromOperator ||
		got.Messages[0].Body != "Hello" || !sameTime(got.Messages[0].CreatedAt, t0) {
		t.Errorf("Ticket messages = %+v", got.Messages)
	}
	byHash, err := s.TicketByTokenHash(ctx, h2)
	if err != nil {
		t.Fatal(err)
	}
	if byHash.ID != t2.ID || byHash.AccountID != 0 || byHash.Email != "" || byHash.Lang != "tr" || messageBodies(byHash.Messages)[0] != "user:Do you log?" ||
		!sameTime(byHash.Messages[0].CreatedAt, t0.Add(time.Hour)) || !sameTime(byHash.UpdatedAt, t0.Add(time.Hour)) {
		t.Errorf("TicketByTokenHash = %+v", byHash)
	}

	_, err = s.Ticket(ctx, t3.ID+1000)
	wantErr(t, "Ticket of an unknown id", err, store.ErrNotFound)
	_, err = s.TicketByTokenHash(ctx, Random(t, 32))
	wantErr(t, "TicketByTokenHash of an unknown hash", err, store.ErrNotFound)
	wantErr(t, "AddTicketMessage to an unknown ticket",
		s.AddTicketMessage(ctx, t3.ID+1000, store.TicketMessage{Body: "x", CreatedAt: t0}, store.TicketOpen), store.ErrNotFound)
	_, err = s.CreateTicket(ctx, &store.Ticket{AccountID: b.ID + 1000, TokenHash: Random(t, 32), Subject: "s"}, store.TicketMessage{Body: "b"})
	wantErr(t, "CreateTicket for an unknown account", err, store.ErrNotFound)
	if _, err := s.CreateTicket(ctx, &store.Ticket{TokenHash: Random(t, 32), Subject: "s", Lang: "pt"}, store.TicketMessage{Body: "b"}); err == nil {
		t.Error("CreateTicket stored the language pt, which the site does not have")
	}

	// Replies append in order and set the status and the activity time.
	addMessage(t, s, t1.ID, store.TicketMessage{FromOperator: true, Body: "Try port 443", CreatedAt: t0.Add(3 * time.Hour)}, store.TicketAnswered)
	addMessage(t, s, t3.ID, store.TicketMessage{Body: "Thanks", CreatedAt: t0.Add(4 * time.Hour)}, store.TicketClosed)
	got = ticketByID(t, s, t1.ID)
	if got.Status != store.TicketAnswered || !sameTime(got.UpdatedAt, t0.Add(3*time.Hour)) || !sameTime(got.CreatedAt, t0) ||
		!slices.Equal(messageBodies(got.Messages), []string{"user:Hello", "op:Try port 443"}) {
		t.Errorf("ticket after a reply = %+v", got)
	}

	for _, tt := range []struct {
		status string
		want   []int64
	}{
		{"", []int64{t3.ID, t1.ID, t2.ID}}, // newest activity first
		{store.TicketOpen, []int64{t2.ID}},
		{store.TicketAnswered, []int64{t1.ID}},
		{store.TicketClosed, []int64{t3.ID}},
		{"no such status", []int64{}},
	} {
		ts, err := s.Tickets(ctx, tt.status)
		if err != nil {
			t.Fatal(err)
		}
		if got := ticketIDs(ts); !slices.Equal(got, tt.want) {
			t.Errorf("Tickets(%q) = %v, want %v", tt.status, got, tt.want)
		}
		for _, tk := range ts {
			if tk.Messages != nil || tk.Subject == "" || len(tk.TokenHash) == 0 {
				t.Errorf("Tickets(%q) listed %+v, want its fields without messages", tt.status, tk)
			}
		}
	}

	for _, tt := range []struct {
		account int64
		want    []int64
		bodies  [][]string
	}{
		{a.ID, []int64{t1.ID}, [][]string{{"user:Hello", "op:Try port 443"}}},
		{b.ID, []int64{t3.ID}, [][]string{{"user:Please", "user:Thanks"}}},
		{b.ID + 1000, []int64{}, nil},
	} {
		ts, err := s.AccountTickets(ctx, tt.account)
		if err != nil {
			t.Fatal(err)
		}
		if got := ticketIDs(ts); !slices.Equal(got, tt.want) {
			t.Errorf("AccountTickets(%d) = %v, want %v", tt.account, got, tt.want)
			continue
		}
		for i, tk := range ts {
			if got := messageBodies(tk.Messages); !slices.Equal(got, tt.bodies[i]) {
				t.Errorf("AccountTickets(%d) ticket %d messages = %v, want %v", tt.account, tk.ID, got, tt.bodies[i])
			}
		}
	}
}

func testSupportRetention(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	ctx := t.Context()
	cutoff := t0.Add(10 * day)
	free := createAccount(t, s, store.Account{})
	held := createAccount(t, s, store.Account{LegalHold: true})
	at := func(d time.Duration) store.TicketMessage {
		return store.TicketMessage{Body: "m", CreatedAt: cutoff.Add(d)}
	}

	old := createTicket(t, s, store.Ticket{AccountID: free.ID, CreatedAt: cutoff.Add(-5 * day)}, at(-5*day))
	addMessage(t, s, old.ID, at(-4*day), store.TicketAnswered)
	oldAnon := createTicket(t, s, store.Ticket{CreatedAt: cutoff.Add(-3 * day)}, at(-3*day))
	mixed := createTicket(t, s, store.Ticket{AccountID: free.ID, CreatedAt: cutoff.Add(-2 * day)}, at(-2*day))
	addMessage(t, s, mixed.ID, store.TicketMessage{Body: "recent", CreatedAt: cutoff.Add(time.Hour)}, store.TicketOpen)
	atCutoff := createTicket(t, s, store.Ticket{CreatedAt: cutoff}, at(0))
	recent := createTicket(t, s, store.Ticket{CreatedAt: cutoff.Add(time.Hour)}, at(time.Hour))
	heldOld := createTicket(t, s, store.Ticket{AccountID: held.ID, CreatedAt: cutoff.Add(-5 * day)}, at(-5*day))
	addMessage(t, s, heldOld.ID, at(-4*day), store.TicketAnswered)

	tickets, messages, err := s.DeleteSupportBefore(ctx, cutoff)
	if err != nil {
		t.Fatal(err)
	}
	if tickets != 2 || messages != 4 {
		t.Errorf("DeleteSupportBefore = %d tickets, %d messages; want 2, 4", tickets, messages)
	}
	for _, id := range []int64{old.ID, oldAnon.ID} {
		_, err := s.Ticket(ctx, id)
		wantErr(t, "ticket without activity since the cutoff", err, store.ErrNotFound)
	}
	ts, err := s.Tickets(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sorted64(ticketIDs(ts)), []int64{mixed.ID, atCutoff.ID, recent.ID, heldOld.ID}; !slices.Equal(got, want) {
		t.Errorf("tickets kept = %v, want %v", got, want)
	}
	if got := messageBodies(ticketByID(t, s, mixed.ID).Messages); !slices.Equal(got, []string{"user:recent"}) {
		t.Errorf("messages kept of a ticket with recent activity = %v, want only the recent one", got)
	}
	if got := ticketByID(t, s, heldOld.ID).Messages; len(got) != 2 {
		t.Errorf("messages kept on legal hold = %d, want 2", len(got))
	}
	if got := ticketByID(t, s, atCutoff.ID).Messages; len(got) != 1 {
		t.Errorf("messages written at the cutoff = %d, want 1 kept", len(got))
	}

	if tickets, messages, err := s.DeleteSupportBefore(ctx, cutoff); err != nil || tickets != 0 || messages != 0 {
		t.Errorf("DeleteSupportBefore again = %d, %d, %v; want 0, 0", tickets, messages, err)
	}
	off := false
	if err := s.UpdateAccount(ctx, held.ID, store.AccountUpdate{LegalHold: &off}); err != nil {
		t.Fatal(err)
	}
	if tickets, messages, err := s.DeleteSupportBefore(ctx, cutoff); err != nil || tickets != 1 || messages != 2 {
		t.Errorf("DeleteSupportBefore after lifting the hold = %d, %d, %v; want 1, 2", tickets, messages, err)
	}
}

func testClientCounters(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	ctx := t.Context()
	if cs, err := s.ClientCounts(ctx); err != nil || len(cs) != 0 {
		t.Fatalf("ClientCounts on an empty store = %v, %v", cs, err)
	}
	reports := []struct {
		day, os, app string
		times        int
	}{
		{"2024-05-06", "android-14", "1.2.0", 3},
		{"2024-05-06", "android-14", "1.3.0", 1},
		{"2024-05-05", "ios-17", "1.2.0", 2},
		{"2024-05-06", "ios-17", "1.2.0", 1},
		{"2024-05-07", "android-14", "1.2.0", 1},
		{"2024-05-06", "android-14", "1.2.0", 2}, // the same key again, later
	}
	for _, r := range reports {
		for range r.times {
			if err := s.CountClient(ctx, r.day, r.os, r.app); err != nil {
				t.Fatal(err)
			}
		}
	}
	counts := func() []string {
		t.Helper()
		cs, err := s.ClientCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := []string{}
		for _, c := range cs {
			out = append(out, fmt.Sprintf("%s %s %s %d", c.Day, c.OSVersion, c.AppVersion, c.Count))
		}
		return out
	}
	want := []string{
		"2024-05-05 ios-17 1.2.0 2",
		"2024-05-06 android-14 1.2.0 5",
		"2024-05-06 android-14 1.3.0 1",
		"2024-05-06 ios-17 1.2.0 1",
		"2024-05-07 android-14 1.2.0 1",
	}
	if got := counts(); !slices.Equal(got, want) {
		t.Errorf("ClientCounts =\n%v\nwant\n%v", got, want)
	}
	for _, tt := range []struct {
		before string
		n      int
		left   []string
	}{
		{"2024-05-05", 0, want},
		{"2024-05-06", 1, want[1:]},
		{"2024-05-06", 0, want[1:]},
		{"2024-05-08", 4, []string{}},
	} {
		n, err := s.DeleteClientCountsBefore(ctx, tt.before)
		if err != nil || n != tt.n {
			t.Errorf("DeleteClientCountsBefore(%s) = %d, %v; want %d", tt.before, n, err, tt.n)
		}
		if got := counts(); !slices.Equal(got, tt.left) {
			t.Errorf("after DeleteClientCountsBefore(%s): %v, want %v", tt.before, got, tt.left)
		}
	}
}

func testDeleteAccountCascade(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	ctx := t.Context()
	a := createAccount(t, s, store.Account{Email: "a@example.com", PaidUntil: farFuture})
	keep := createAccount(t, s, store.Account{Email: "k@example.com", PaidUntil: farFuture})
	newDevice(t, s, a.ID)
	token := newSession(t, s, a.ID, t0)
	keepToken := newSession(t, s, keep.ID, t0)
	ta := createTicket(t, s, store.Ticket{AccountID: a.ID, CreatedAt: t0}, store.TicketMessage{})
	addMessage(t, s, ta.ID, store.TicketMessage{FromOperator: true, Body: "reply", CreatedAt: t0.Add(time.Hour)}, store.TicketAnswered)
	tk := createTicket(t, s, store.Ticket{AccountID: keep.ID, CreatedAt: t0}, store.TicketMessage{})
	tanon := createTicket(t, s, store.Ticket{CreatedAt: t0}, store.TicketMessage{})
	queueMail(t, s, store.Mail{AccountID: a.ID, CreatedAt: t0})
	queueMail(t, s, store.Mail{AccountID: a.ID, CreatedAt: t0, Kind: store.MailMarketing})
	mk := queueMail(t, s, store.Mail{AccountID: keep.ID, CreatedAt: t0})
	manon := queueMail(t, s, store.Mail{CreatedAt: t0})

	if err := s.DeleteAccount(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	_, err := s.Ticket(ctx, ta.ID)
	wantErr(t, "ticket of a deleted account", err, store.ErrNotFound)
	_, err = s.TicketByTokenHash(ctx, ta.TokenHash)
	wantErr(t, "ticket of a deleted account by token", err, store.ErrNotFound)
	if ts, err := s.AccountTickets(ctx, a.ID); err != nil || len(ts) != 0 {
		t.Errorf("AccountTickets of a deleted account = %v, %v", ticketIDs(ts), err)
	}
	if ts, err := s.Tickets(ctx, ""); err != nil || !slices.Equal(sorted64(ticketIDs(ts)), []int64{tk.ID, tanon.ID}) {
		t.Errorf("tickets left = %v, %v; want %v", ticketIDs(ts), err, []int64{tk.ID, tanon.ID})
	}
	// The deleted ticket's messages went with it: nothing is left to age out.
	if n, m, err := s.DeleteSupportBefore(ctx, t0.Add(time.Second)); err != nil || n != 2 || m != 2 {
		t.Errorf("DeleteSupportBefore after the deletion = %d tickets, %d messages, %v; want 2, 2 (the others')", n, m, err)
	}
	if ms, err := s.AccountMail(ctx, a.ID); err != nil || len(ms) != 0 {
		t.Errorf("AccountMail of a deleted account = %v, %v", mailIDs(ms), err)
	}
	if ms, err := s.DueMail(ctx, farFuture, 100); err != nil || !slices.Equal(mailIDs(ms), []int64{mk.ID, manon.ID}) {
		t.Errorf("mail left = %v, %v; want %v", mailIDs(ms), err, []int64{mk.ID, manon.ID})
	}
	_, err = s.SessionByTokenHash(ctx, token, t0)
	wantErr(t, "session of a deleted account", err, store.ErrInvalidSession)
	if _, err := s.SessionByTokenHash(ctx, keepToken, t0); err != nil {
		t.Errorf("session of another account: %v", err)
	}
	if ds, err := s.Devices(ctx, a.ID); err != nil || len(ds) != 0 {
		t.Errorf("devices of a deleted account: %v, %v", ds, err)
	}
	_, err = s.AccountRows(ctx, a.ID)
	wantErr(t, "AccountRows of a deleted account", err, store.ErrNotFound)
}
