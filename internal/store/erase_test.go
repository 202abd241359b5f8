package store_test

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"veil/internal/privacy"
	"veil/internal/store"
	"veil/internal/store/storetest"
)

// personal stores an account with everything a person can leave: email,
// devices in the peer map, a session, a support ticket, queued mail. It
// returns the account and the values that must not outlive its erasure,
// as stored, plus the raw bytes of each device key.
func personal(tb testing.TB, s store.Store) (*store.Account, map[string][]byte) {
	tb.Helper()
	ctx := tb.Context()
	tag := hex.EncodeToString(random(tb, 8))
	a := &store.Account{CodeHash: random(tb, 32), Email: "erase-" + tag + "@example.org", Plan: store.PlanPremium,
		PaidUntil: time.Now().Add(time.Hour)}
	if _, err := s.CreateAccount(ctx, a); err != nil {
		tb.Fatal(err)
	}
	secrets := map[string][]byte{"email": []byte(a.Email), "access-code hash": a.CodeHash}
	for i := range 2 {
		raw := random(tb, 32)
		key := base64.StdEncoding.EncodeToString(raw)
		if _, err := s.CreateDevice(ctx, store.NewDevice{AccountID: a.ID, Name: "phone", PublicKey: key,
			MaxDevices: 5, MinIndex: 1, MaxIndex: 1 << 20}); err != nil {
			tb.Fatal(err)
		}
		secrets[fmt.Sprintf("device key %d", i)] = []byte(key)
		secrets[fmt.Sprintf("device key %d (raw)", i)] = raw
	}
	session := random(tb, 32)
	if err := s.CreateSession(ctx, store.Session{TokenHash: session, AccountID: a.ID, ExpiresAt: time.Now().Add(time.Hour)}, time.Now()); err != nil {
		tb.Fatal(err)
	}
	secrets["session hash"] = session
	subject, body := "ticket-subject-"+tag, "ticket-text-"+tag+": my tunnel drops every night"
	if _, err := s.CreateTicket(ctx, &store.Ticket{AccountID: a.ID, Email: a.Email, TokenHash: random(tb, 32), Subject: subject},
		store.TicketMessage{Body: body}); err != nil {
		tb.Fatal(err)
	}
	secrets["ticket subject"], secrets["ticket text"] = []byte(subject), []byte(body)
	if _, err := s.QueueMail(ctx, &store.Mail{Kind: store.MailTransactional, AccountID: a.ID, To: a.Email,
		Subject: "Receipt", Body: "mail-body-" + tag}); err != nil {
		tb.Fatal(err)
	}
	secrets["mail body"] = []byte("mail-body-" + tag)
	// The account is an affiliate, and was referred by one that stays.
	code := "aff" + tag
	if _, err := s.JoinAffiliate(ctx, a.ID, code, time.Now()); err != nil {
		tb.Fatal(err)
	}
	secrets["referral code"] = []byte(code)
	referrer := &store.Account{CodeHash: random(tb, 32), Plan: store.PlanFree, PaidUntil: time.Now().AddDate(5, 0, 0)}
	if _, err := s.CreateAccount(ctx, referrer); err != nil {
		tb.Fatal(err)
	}
	if _, err := s.JoinAffiliate(ctx, referrer.ID, "keep"+tag, time.Now()); err != nil {
		tb.Fatal(err)
	}
	if err := s.Refer(ctx, a.ID, referrer.ID, time.Now()); err != nil {
		tb.Fatal(err)
	}
	return a, secrets
}

// bystanders stores accounts that stay, so that erased rows share their
// pages with live ones.
func bystanders(tb testing.TB, s store.Store, n int) {
	tb.Helper()
	for range n {
		a := &store.Account{CodeHash: random(tb, 32), Email: "stays-" + hex.EncodeToString(random(tb, 6)) + "@example.org",
			Plan: store.PlanPremium, PaidUntil: time.Now().AddDate(10, 0, 0)}
		if _, err := s.CreateAccount(tb.Context(), a); err != nil {
			tb.Fatal(err)
		}
		if _, err := s.CreateDevice(tb.Context(), store.NewDevice{AccountID: a.ID, Name: "laptop",
			PublicKey: base64.StdEncoding.EncodeToString(random(tb, 32)), MaxDevices: 5, MinIndex: 1, MaxIndex: 1 << 20}); err != nil {
			tb.Fatal(err)
		}
	}
}

func random(tb testing.TB, n int) []byte { return storetest.Random(tb, n) }

// openNew opens a Store on a fresh database, returning it and its dsn.
func openNew(t *testing.T, newDB func(testing.TB) string) (store.Store, string) {
	t.Helper()
	dsn := newDB(t)
	s, err := store.OpenTest(t.Context(), dsn, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dsn
}

// syncedGateway registers a gateway that holds the current peer map.
func syncedGateway(tb testing.TB, s store.Store) *store.Gateway {
	tb.Helper()
	g := &store.Gateway{Name: "gw-" + hex.EncodeToString(random(tb, 4)), Location: "se-sto", Endpoint: "192.0.2.1:51820", TokenHash: random(tb, 32)}
	if _, err := s.CreateGateway(tb.Context(), g); err != nil {
		tb.Fatal(err)
	}
	synced(tb, s, g)
	return g
}

func synced(tb testing.TB, s store.Store, g *store.Gateway) {
	tb.Helper()
	v, err := s.PeerVersion(tb.Context())
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.GatewaySynced(tb.Context(), g.ID, v); err != nil {
		tb.Fatal(err)
	}
}

// stored checks that the database files hold the secrets before the
// erasure (all but the raw key bytes, which are stored as base64), so
// that finding none afterwards means something.
func stored(tb testing.TB, dsn string, secrets map[string][]byte) {
	tb.Helper()
	found := strings.Join(storetest.Leftovers(tb, dsn, secrets), "\n")
	for name := range secrets {
		if !strings.HasSuffix(name, "(raw)") && !strings.Contains(found, name+" in ") {
			tb.Fatalf("before the erasure, %s is in no database file: the test cannot see the files", name)
		}
	}
}

// TestErasureLeavesNothing erases an account, by request and by the
// retention sweeper, and then finds none of its values in any file of
// the database: not in free pages, not in SQLite's write-ahead log, not
// in PostgreSQL's table files. A device key stays only in its peer-map
// tombstone, until every gateway has synced its removal.
func TestErasureLeavesNothing(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, newDB func(testing.TB) string) {
		t.Run("request", func(t *testing.T) {
			s, dsn := openNew(t, newDB)
			bystanders(t, s, 20)
			a, secrets := personal(t, s)
			bystanders(t, s, 20)
			g := syncedGateway(t, s)
			stored(t, dsn, secrets)

			if err := s.DeleteAccount(t.Context(), a.ID); err != nil {
				t.Fatal(err)
			}
			var keys, others []string
			for _, f := range storetest.Leftovers(t, dsn, secrets) {
				if strings.HasPrefix(f, "device key ") && !strings.Contains(f, "(raw)") {
					keys = append(keys, f)
				} else {
					others = append(others, f)
				}
			}
			if len(others) != 0 {
				t.Errorf("after the erasure:\n%s", strings.Join(others, "\n"))
			}
			if len(keys) == 0 {
				t.Error("the device keys are gone before the gateway synced their removal")
			}
			synced(t, s, g)
			if left := storetest.Leftovers(t, dsn, secrets); len(left) != 0 {
				t.Errorf("after the gateway synced the removal:\n%s", strings.Join(left, "\n"))
			}
		})
		t.Run("sweeper", func(t *testing.T) {
			s, dsn := openNew(t, newDB)
			bystanders(t, s, 20)
			_, secrets := personal(t, s)
			// A ticket sent without an account goes by age alone.
			email, text := "no-account-"+hex.EncodeToString(random(t, 6))+"@example.org", "anonymous-ticket-"+hex.EncodeToString(random(t, 8))
			if _, err := s.CreateTicket(t.Context(), &store.Ticket{Email: email, TokenHash: random(t, 32), Subject: "help"},
				store.TicketMessage{Body: text}); err != nil {
				t.Fatal(err)
			}
			secrets["ticket email"], secrets["anonymous ticket text"] = []byte(email), []byte(text)
			bystanders(t, s, 20)
			// A gateway that never comes back does not keep the keys.
			syncedGateway(t, s)
			stored(t, dsn, secrets)

			later := time.Now().AddDate(1, 0, 0)
			sw := &privacy.Sweeper{Store: s, Periods: privacy.DefaultPeriods, Now: func() time.Time { return later }}
			ds, err := sw.Run(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(ds, func(d privacy.Deleted) bool { return d.What == "accounts" && d.Count == 1 }) {
				t.Fatalf("the sweep deleted %+v, want the one unused account", ds)
			}
			if left := storetest.Leftovers(t, dsn, secrets); len(left) != 0 {
				t.Errorf("after the sweep:\n%s", strings.Join(left, "\n"))
			}
		})
	})
}

// TestUpgradeClearsEarlierErasures: a database from before erasure
// cleared its files (schema 7) may hold erased data in free pages or dead
// rows; the upgrade clears it once.
func TestUpgradeClearsEarlierErasures(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, newDB func(testing.TB) string) {
		ctx := t.Context()
		s, dsn := openNew(t, newDB)
		bystanders(t, s, 20)
		db := store.RawDB(s)
		// As the old binary did: no secure_delete (the one writer
		// connection keeps the setting), no wipe after the deletion.
		if !strings.HasPrefix(dsn, "postgres") {
			if _, err := db.ExecContext(ctx, "PRAGMA secure_delete = 0"); err != nil {
				t.Fatal(err)
			}
		}
		email := "old-erasure-" + hex.EncodeToString(random(t, 8)) + "@example.org"
		if _, err := s.CreateAccount(ctx, &store.Account{CodeHash: random(t, 32), Email: email, Plan: store.PlanFree}); err != nil {
			t.Fatal(err)
		}
		bystanders(t, s, 20)
		for _, q := range []string{
			"DELETE FROM accounts WHERE email = '" + email + "'",
			"ALTER TABLE gateways DROP COLUMN synced_version", "ALTER TABLE gateways DROP COLUMN synced_at",
			"ALTER TABLE gateways DROP COLUMN tls_port", "ALTER TABLE gateways DROP COLUMN quic_port", "ALTER TABLE gateways DROP COLUMN cert_pin",
			"DROP INDEX devices_out_of_map", "DROP INDEX accounts_paid_until", "DROP INDEX devices_free",
			"DROP TABLE affiliate_ledger", "DROP TABLE referrals", "DROP TABLE affiliates", "DROP TABLE vouchers",
			"ALTER TABLE accounts DROP COLUMN reminded_until", "ALTER TABLE accounts DROP COLUMN lang", "ALTER TABLE support_tickets DROP COLUMN lang",
			"DROP TABLE pending_refunds", "ALTER TABLE devices DROP COLUMN free", "ALTER TABLE devices DROP COLUMN key_created_at", "ALTER TABLE devices DROP COLUMN proxy_hash", "ALTER TABLE gateways DROP COLUMN proxy_port",
			"DELETE FROM schema_version WHERE version >= 8",
		} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		s.Close()
		secrets := map[string][]byte{"email": []byte(email)}
		if left := storetest.Leftovers(t, dsn, secrets); len(left) == 0 {
			t.Fatal("the old binary's erasure left nothing behind: the test shows nothing")
		}
		s, err := store.OpenTest(ctx, dsn, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if left := storetest.Leftovers(t, dsn, secrets); len(left) != 0 {
			t.Errorf("after the upgrade:\n%s", strings.Join(left, "\n"))
		}
	})
}
