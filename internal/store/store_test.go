package store_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"veil/internal/store"
	"veil/internal/store/storetest"
)

// opener opens Stores for the conformance suite: one database per test,
// shared by every Store opened for that same test.
type opener struct {
	mu  sync.Mutex
	dbs map[testing.TB]string
	// newDB returns the dsn of a fresh database for tb.
	newDB func(tb testing.TB) string
}

func (op *opener) open(tb testing.TB) store.Store {
	tb.Helper()
	op.mu.Lock()
	dsn, ok := op.dbs[tb]
	op.mu.Unlock()
	if !ok {
		dsn = op.newDB(tb)
		op.mu.Lock()
		op.dbs[tb] = dsn
		op.mu.Unlock()
		tb.Cleanup(func() {
			op.mu.Lock()
			delete(op.dbs, tb)
			op.mu.Unlock()
		})
	}
	s, err := store.OpenTest(tb.Context(), dsn, 0)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

func sqliteDB(tb testing.TB) string { return storetest.SQLitePath(tb) }

// postgresDB is storetest.PostgresURL: a fresh database of tb's own, or a
// skip without VEIL_TEST_POSTGRES.
func postgresDB(tb testing.TB) string { return storetest.PostgresURL(tb) }

func TestSQLite(t *testing.T) {
	t.Parallel()
	op := &opener{dbs: make(map[testing.TB]string), newDB: sqliteDB}
	storetest.Run(t, op.open)
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	postgresDB(t) // skip or fail early, before every subtest does
	op := &opener{dbs: make(map[testing.TB]string), newDB: postgresDB}
	storetest.Run(t, op.open)
}

// dialects runs f on each database, as subtests.
func dialects(t *testing.T, f func(t *testing.T, newDB func(testing.TB) string)) {
	storetest.Dialects(t, f)
}

func TestMigrations(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, newDB func(testing.TB) string) {
		ctx := t.Context()
		dsn := newDB(t)
		s, err := store.OpenTest(ctx, dsn, 0)
		if err != nil {
			t.Fatal(err)
		}
		latest := store.LatestMigration(s)
		var v int
		if err := store.RawDB(s).QueryRowContext(ctx, "SELECT MAX(version) FROM schema_version").Scan(&v); err != nil || v != latest {
			t.Errorf("fresh database at version %d, %v; want %d", v, err, latest)
		}
		s.Close()

		// Reopening applies nothing and keeps the data.
		s, err = store.OpenTest(ctx, dsn, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.RawDB(s).ExecContext(ctx, "INSERT INTO schema_version (version) VALUES ($1)", latest+5); err != nil {
			t.Fatal(err)
		}
		s.Close()

		_, err = store.OpenTest(ctx, dsn, 0)
		if !errors.Is(err, store.ErrSchemaTooNew) {
			t.Fatalf("Open of a newer schema: %v, want store.ErrSchemaTooNew", err)
		}
		for _, n := range []int{latest + 5, latest} {
			if !strings.Contains(err.Error(), fmt.Sprint(n)) {
				t.Errorf("error %q does not name version %d", err, n)
			}
		}
	})
}

// TestConcurrentOpen opens one fresh database from several goroutines at
// once, as several `veil serve` processes starting together would: each
// migration must be applied once.
func TestConcurrentOpen(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, newDB func(testing.TB) string) {
		dsn := newDB(t)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				s, err := store.OpenTest(t.Context(), dsn, 0)
				if err != nil {
					t.Errorf("Open: %v", err)
					return
				}
				s.Close()
			})
		}
		wg.Wait()
		s, err := store.OpenTest(t.Context(), dsn, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		latest := store.LatestMigration(s)
		var n int
		if err := store.RawDB(s).QueryRowContext(t.Context(), "SELECT COUNT(*) FROM schema_version").Scan(&n); err != nil || n != latest {
			t.Errorf("schema_version has %d rows, %v; want %d", n, err, latest)
		}
	})
}

// TestHistory checks that a since older than the kept history gets the
// full map, with a history shortened to a few versions.
func TestHistory(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, newDB func(testing.TB) string) {
		ctx := t.Context()
		s, err := store.OpenTest(ctx, newDB(t), 3)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		// A gateway that has synced nothing keeps tombstones alive: the
		// history bounds alone decide.
		g := &store.Gateway{Name: "g", TokenHash: []byte("t")}
		if _, err := s.CreateGateway(ctx, g); err != nil {
			t.Fatal(err)
		}
		if err := s.GatewaySynced(ctx, g.ID, 0); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		a := &store.Account{CodeHash: []byte("h"), Plan: store.PlanFree, PaidUntil: now.Add(time.Hour)}
		if _, err := s.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
		var keys []string
		for i := range 6 {
			k := fmt.Sprintf("key%d", i)
			d, err := s.CreateDevice(ctx, store.NewDevice{AccountID: a.ID, PublicKey: k, MaxDevices: 10, MinIndex: 1, MaxIndex: 10})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteDevice(ctx, a.ID, d.ID); err != nil {
				t.Fatal(err)
			}
			keys = append(keys, k)
		}
		// Versions 1..12; tombstones kept for versions 10..12.
		for since, full := range map[int64]bool{8: true, 9: false, 11: false} {
			pc, err := s.PeersSince(ctx, since)
			if err != nil {
				t.Fatal(err)
			}
			if pc.Version != 12 || pc.Full != full {
				t.Errorf("PeersSince(%d) = version %d full %v; want 12, %v", since, pc.Version, pc.Full, full)
			}
		}
		var n int
		if err := store.RawDB(s).QueryRowContext(ctx, "SELECT COUNT(*) FROM peer_tombstones").Scan(&n); err != nil || n != 2 {
			t.Errorf("%d tombstones kept, %v; want 2", n, err)
		}

		// Age: tombstones older than the history age go at the next sync.
		n2, err := s.SyncPeerActivity(ctx, now.Add(48*time.Hour))
		if err != nil || n2 != 0 {
			t.Fatalf("SyncPeerActivity = %d, %v", n2, err)
		}
		if pc, err := s.PeersSince(ctx, 11); err != nil || !pc.Full {
			t.Errorf("PeersSince after age pruning = %+v, %v; want full", pc, err)
		}
	})
}

// The crash test: a child process writes in a loop and is SIGKILLed
// mid-burst; the database it leaves must be intact and consistent.

const crashEnv = "VEIL_STORE_CRASH_CHILD"

// crashLimit is the device limit the child uses.
const crashLimit = 3

func TestMain(m *testing.M) {
	if path := os.Getenv(crashEnv); path != "" {
		crashChild(path)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashChild writes accounts and devices to path until killed, printing a
// line after each commit.
func crashChild(path string) {
	ctx := context.Background()
	s, err := store.Open(ctx, path, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var ids []int64
	for i := 0; ; i++ {
		var b [32]byte
		rand.Read(b[:])
		if i%3 == 0 {
			id, err := s.CreateAccount(ctx, &store.Account{CodeHash: b[:], Plan: store.PlanPremium, PaidUntil: time.Now().Add(time.Hour)})
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
			ids = append(ids, id)
		} else {
			_, err := s.CreateDevice(ctx, store.NewDevice{AccountID: ids[i%len(ids)], PublicKey: base64.StdEncoding.EncodeToString(b[:]),
				MaxDevices: crashLimit, MinIndex: 1, MaxIndex: 1 << 20})
			if err != nil && !errors.Is(err, store.ErrDeviceLimit) {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
		}
		fmt.Println("ok")
	}
}

func TestCrash(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "veil.db")
	for round := range 3 {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashEnv+"="+path)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill after a number of commits that varies by round, so the kill
		// lands at different points of a transaction.
		lines := bufio.NewScanner(out)
		var n atomic.Int64
		for lines.Scan() && n.Add(1) < int64(150+37*round) {
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		if n.Load() < 10 {
			t.Fatalf("round %d: child stopped after %d writes", round, n.Load())
		}
		checkCrashed(t, path)
	}
}

func checkCrashed(t *testing.T, path string) {
	t.Helper()
	ctx := t.Context()
	s, err := store.OpenTest(ctx, path, 0)
	if err != nil {
		t.Fatalf("reopening after the kill: %v", err)
	}
	defer s.Close()
	var res string
	if err := store.RawDB(s).QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res); err != nil || res != "ok" {
		t.Fatalf("integrity_check = %q, %v", res, err)
	}
	checks := []struct {
		name  string
		query string
	}{
		{"accounts over the device limit", fmt.Sprintf("SELECT COUNT(*) FROM (SELECT account_id FROM devices GROUP BY account_id HAVING COUNT(*) > %d) x", crashLimit)},
		{"shared addr_index", "SELECT COUNT(*) FROM (SELECT addr_index FROM devices GROUP BY addr_index HAVING COUNT(*) > 1) x"},
		{"devices without an account", "SELECT COUNT(*) FROM devices d WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = d.account_id)"},
		{"in-map devices above the version", "SELECT COUNT(*) FROM devices WHERE peer_version > (SELECT version FROM peer_version)"},
		{"foreign key violations", "SELECT COUNT(*) FROM pragma_foreign_key_check"},
	}
	for _, c := range checks {
		var n int
		if err := store.RawDB(s).QueryRowContext(ctx, c.query).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s: %d, %v", c.name, n, err)
		}
	}
	var devices int
	if err := store.RawDB(s).QueryRowContext(ctx, "SELECT COUNT(*) FROM devices").Scan(&devices); err != nil || devices == 0 {
		t.Errorf("no devices survived: %d, %v", devices, err)
	}
}

// TestListenReconnect cuts the PostgreSQL LISTEN connections; a change made
// through another Store must still reach Watch once they are back.
func TestListenReconnect(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := postgresDB(t)
	var stores []store.Store
	for range 2 {
		s, err := store.OpenTest(ctx, dsn, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores = append(stores, s)
	}
	w := stores[1].Watch(ctx)
	var cut int
	err := store.RawDB(stores[0]).QueryRowContext(ctx, `SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN%'`).Scan(&cut)
	if err != nil || cut != 2 {
		t.Fatalf("terminated %d LISTEN connections, %v; want 2", cut, err)
	}
	a := &store.Account{CodeHash: []byte("h"), Plan: store.PlanFree, PaidUntil: time.Now().Add(time.Hour)}
	if _, err := stores[0].CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := stores[0].CreateDevice(ctx, store.NewDevice{AccountID: a.ID, PublicKey: "k", MaxDevices: 1, MinIndex: 1, MaxIndex: 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-w:
		if v != 1 {
			t.Errorf("received version %d, want 1", v)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no notice within 20s after the LISTEN connection was cut")
	}
}
