package privacy_test

import (
	"database/sql"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
	"veil/internal/i18n"

	"veil/internal/privacy"
	"veil/internal/store"
	"veil/internal/store/storetest"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // the "sqlite" database/sql driver
)

// rawDB opens dsn directly, to change the schema behind the store's back.
func rawDB(tb testing.TB, dsn string) *sql.DB {
	tb.Helper()
	driver := "sqlite"
	if strings.HasPrefix(dsn, "postgres") {
		driver = "pgx"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func openStore(tb testing.TB, dsn string) store.Store {
	tb.Helper()
	s, err := store.Open(tb.Context(), dsn, nil)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// TestSchemaMatchesInventory is done-when point 1: the live schema of both
// databases equals the inventory, and a change in either direction (an
// undeclared table or column, a declared column gone) is caught.
func TestSchemaMatchesInventory(t *testing.T) {
	t.Parallel()
	storetest.Dialects(t, func(t *testing.T, newDB func(testing.TB) string) {
		t.Parallel()
		dsn := newDB(t)
		s := openStore(t, dsn)
		live, err := s.Schema(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if p := privacy.CheckSchema(live); len(p) > 0 {
			t.Fatalf("schema and inventory differ:\n%s", strings.Join(p, "\n"))
		}
		for _, bookkeeping := range []string{"schema_version", "peer_version", "peer_tombstones", "sessions", "gateways"} {
			if _, ok := live[bookkeeping]; !ok {
				t.Errorf("live schema has no %s table", bookkeeping)
			}
		}

		db := rawDB(t, dsn)
		changes := []struct {
			name, sql, want string
		}{
			{"undeclared table", "CREATE TABLE visits (client_ip TEXT)", "visits.client_ip is stored but not declared in the data inventory"},
			{"undeclared column", "ALTER TABLE sessions ADD COLUMN user_agent TEXT", "sessions.user_agent is stored but not declared in the data inventory"},
			{"declared column missing", "ALTER TABLE client_counters DROP COLUMN count", "client_counters.count is declared in the data inventory (client_counters) but not in the database"},
		}
		for _, c := range changes {
			if _, err := db.ExecContext(t.Context(), c.sql); err != nil {
				t.Fatalf("%s: %v", c.sql, err)
			}
			live, err := s.Schema(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if p := privacy.CheckSchema(live); !slices.Contains(p, c.want) {
				t.Errorf("%s: CheckSchema = %q, want it to contain %q", c.name, p, c.want)
			}
		}
	})
}

func TestInventoryWellFormed(t *testing.T) {
	ids := map[string]bool{}
	cols := map[string]bool{}
	for _, c := range privacy.Inventory {
		if c.ID == "" || ids[c.ID] {
			t.Errorf("category %q: empty or duplicate ID", c.ID)
		}
		ids[c.ID] = true
		if c.Name == "" || c.Purpose == "" || c.LegalBasis == "" || c.Retention == "" || c.Storage == "" {
			t.Errorf("category %s: name, purpose, legal basis, retention and storage are required", c.ID)
		}
		if len(c.Fields) == 0 && c.Note == "" {
			t.Errorf("category %s has no fields and no note saying why", c.ID)
		}
		for _, f := range c.Fields {
			if tbl, col, ok := strings.Cut(f.Column, "."); !ok || tbl == "" || col == "" {
				t.Errorf("category %s: field %q needs table.column", c.ID, f.Column)
			}
			if cols[f.Column] {
				t.Errorf("%s declared twice", f.Column)
			}
			cols[f.Column] = true
		}
		if strings.HasPrefix(privacy.RetentionText(c.Retention, privacy.DefaultPeriods), "Unknown") {
			t.Errorf("category %s: rule %q has no text", c.ID, c.Retention)
		}
	}
}

func TestRenderHasEveryCategory(t *testing.T) {
	for _, lang := range []string{"en", "xx"} {
		doc := privacy.Render(lang, "# Hello\n\nOperator   text\nhere.", "en", privacy.Controller{}, privacy.Periods{UnusedAccount: 30 * 24 * time.Hour, TaxYears: 10})
		text := doc.Text()
		for _, want := range []string{"# Hello\n", "Operator text here.", "10 years", "30 days", "6 months"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s: policy text lacks %q", lang, want)
			}
		}
		for _, c := range privacy.Inventory {
			if !strings.Contains(text, "## "+i18n.For("en").T(c.Name)+"\n") {
				t.Errorf("%s: policy lacks category %s", lang, c.ID)
			}
			for _, f := range c.Fields {
				if !strings.Contains(text, f.Column) {
					t.Errorf("%s: policy lacks field %s", lang, f.Column)
				}
			}
		}
	}
}

// TestRenderErasure: the policy says how long erased data can remain in
// PostgreSQL's write-ahead log and in the operator's backups.
func TestRenderErasure(t *testing.T) {
	for _, tt := range []struct {
		backupDays int
		want       string
	}{{45, "at most 45 days"}, {0, "keeps no backups"}} {
		text := privacy.Render("en", "", "en", privacy.Controller{}, privacy.Periods{UnusedAccount: 30 * 24 * time.Hour, TaxYears: 7, BackupDays: tt.backupDays}).Text()
		for _, want := range []string{"# When data is erased", "write-ahead log", "80 MB to 1 GB", tt.want, "Until every gateway has dropped the device, at most 24 hours."} {
			if !strings.Contains(text, want) {
				t.Errorf("backups %d days: policy text lacks %q", tt.backupDays, want)
			}
		}
	}
}

func TestDiff(t *testing.T) {
	tests := []struct {
		name     string
		from, to string
		want     []privacy.Line
	}{
		{"same", "a\nb\n", "a\nb\n", []privacy.Line{{privacy.Same, "a"}, {privacy.Same, "b"}}},
		{"changed line", "a\nb\nc\n", "a\nB\nc\n", []privacy.Line{{privacy.Same, "a"}, {privacy.Removed, "b"}, {privacy.Added, "B"}, {privacy.Same, "c"}}},
		{"added", "a\n", "a\nz\n", []privacy.Line{{privacy.Same, "a"}, {privacy.Added, "z"}}},
		{"removed", "a\nz\n", "z\n", []privacy.Line{{privacy.Removed, "a"}, {privacy.Same, "z"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := privacy.Diff(tt.from, tt.to); !slices.Equal(got, tt.want) {
				t.Errorf("Diff = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestExportComplete checks that the export holds every category of the
// inventory and, for the account's own categories, every declared column.
func TestExportComplete(t *testing.T) {
	t.Parallel()
	storetest.Dialects(t, func(t *testing.T, newDB func(testing.TB) string) {
		t.Parallel()
		ctx := t.Context()
		s := openStore(t, newDB(t))
		now := time.Now().UTC().Truncate(time.Second)
		a := &store.Account{CodeHash: []byte("code"), Email: "a@example.org", Plan: store.PlanPremium, PaidUntil: now.Add(time.Hour)}
		if _, err := s.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
		other := &store.Account{CodeHash: []byte("other"), Plan: store.PlanFree}
		if _, err := s.CreateAccount(ctx, other); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateDevice(ctx, store.NewDevice{AccountID: a.ID, Name: "phone", PublicKey: "k1", MaxDevices: 5, MinIndex: 2, MaxIndex: 9, Block: []string{"ads"}}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateSession(ctx, store.Session{TokenHash: []byte("tok"), AccountID: a.ID, ExpiresAt: now.Add(time.Hour)}, now); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateRecoveryToken(ctx, store.RecoveryToken{TokenHash: []byte("rec"), AccountID: a.ID, ExpiresAt: now.Add(time.Hour)}, now); err != nil {
			t.Fatal(err)
		}
		tk := &store.Ticket{AccountID: a.ID, TokenHash: []byte("t1"), Subject: "help"}
		if _, err := s.CreateTicket(ctx, tk, store.TicketMessage{Body: "it broke"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateTicket(ctx, &store.Ticket{AccountID: other.ID, TokenHash: []byte("t2"), Subject: "not yours"}, store.TicketMessage{Body: "secret"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.QueueMail(ctx, &store.Mail{Kind: store.MailTransactional, AccountID: a.ID, To: a.Email, Subject: "receipt", Body: "thanks"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RecordPayment(ctx, store.Payment{AccountID: a.ID, Processor: "testpay", Reference: "r1", Product: "premium-30", Days: 30, AmountCents: 500, Currency: "EUR"}, time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RecordPayment(ctx, store.Payment{AccountID: other.ID, Processor: "testpay", Reference: "r2", Product: "premium-30", Days: 30, AmountCents: 500, Currency: "EUR"}, time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := s.JoinAffiliate(ctx, other.ID, "other-code", time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := s.JoinAffiliate(ctx, a.ID, "a-code", time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := s.Refer(ctx, a.ID, other.ID, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := s.Refer(ctx, other.ID, a.ID, time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RecordPayment(ctx, store.Payment{AccountID: other.ID, Processor: "testpay", Reference: "r3", Product: "premium-30", Days: 30, AmountCents: 500, Currency: "EUR", AffiliatePercent: 20}, time.Now()); err != nil {
			t.Fatal(err)
		}
		e := &privacy.Exporter{Store: s, Addresses: func(i int64) (string, string) { return "10.0.0.x", "fd00::x" }}
		exp, err := e.Export(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range privacy.Inventory {
			ec, ok := exp.Categories[c.ID]
			if !ok {
				t.Errorf("export lacks category %s", c.ID)
				continue
			}
			if ec.Name != i18n.For("en").T(c.Name) || strings.Contains(ec.Name+ec.Note, "privacy.") {
				t.Errorf("export of %s is named %q (note %q), not in words", c.ID, ec.Name, ec.Note)
			}
			if !c.PerAccount {
				continue
			}
			for _, f := range c.Fields {
				tbl, col, _ := strings.Cut(f.Column, ".")
				rows := ec.Records[tbl]
				if len(rows) == 0 {
					t.Errorf("export of %s has no %s rows", c.ID, tbl)
					continue
				}
				for _, r := range rows {
					if _, ok := r[col]; !ok {
						t.Errorf("export row of %s lacks %s", tbl, col)
					}
				}
			}
		}
		b, err := json.Marshal(exp)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`"email":"a@example.org"`, `"body":"it broke"`, `"subject":"receipt"`, `"ipv4":"10.0.0.x"`, `"marketing_consent":false`} {
			if !strings.Contains(string(b), want) {
				t.Errorf("export lacks %s", want)
			}
		}
		if strings.Contains(string(b), "not yours") || strings.Contains(string(b), "secret") {
			t.Errorf("export holds another account's ticket: %s", b)
		}
	})
}

func TestSentStoredIsDeclared(t *testing.T) {
	ids := map[string]bool{}
	for _, c := range privacy.Inventory {
		ids[c.ID] = true
	}
	for _, s := range privacy.Sent {
		if s.Stored != "" && !ids[s.Stored] {
			t.Errorf("%s sends %s into %q, which the inventory does not declare", s.App, s.What, s.Stored)
		}
		if s.To != "control" && s.To != "gateway" {
			t.Errorf("%s: %s goes to %q", s.App, s.What, s.To)
		}
	}
}
