package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for the admin connection

	"veil/internal/store"
)

// openPair opens two Stores on one fresh PostgreSQL database, as two serve
// processes would, with the fallback poll every listenPoll.
func openPair(t *testing.T, listenPoll time.Duration) (writer, watcher store.Store, dsn string) {
	t.Helper()
	dsn = postgresDB(t)
	var ss [2]store.Store
	for i := range ss {
		s, err := store.OpenPolling(t.Context(), dsn, listenPoll)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		ss[i] = s
	}
	return ss[0], ss[1], dsn
}

// addDevice makes a map change through s and returns its version.
func addDevice(t *testing.T, s store.Store, key string) int64 {
	t.Helper()
	ctx := t.Context()
	a := &store.Account{CodeHash: []byte("h-" + key), Plan: store.PlanFree, PaidUntil: time.Now().Add(time.Hour)}
	if _, err := s.CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateDevice(ctx, store.NewDevice{AccountID: a.ID, PublicKey: key, MaxDevices: 1, MinIndex: 1, MaxIndex: 1000}); err != nil {
		t.Fatal(err)
	}
	v, err := s.PeerVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// await fails unless w delivers version want (or a newer one) within d.
func await(t *testing.T, w <-chan int64, want int64, d time.Duration, why string) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case v, ok := <-w:
			if !ok {
				t.Fatalf("watch closed before version %d", want)
			}
			if v >= want {
				return
			}
		case <-timeout:
			t.Fatalf("no notice of version %d within %v: %s", want, d, why)
		}
	}
}

// listeners counts the database's LISTEN connections.
func listeners(t *testing.T, s store.Store) int {
	t.Helper()
	var n int
	err := store.RawDB(s).QueryRowContext(t.Context(), `SELECT COUNT(*) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestNotifyOtherStore: a change committed through one Store wakes a
// watcher of another on the same database by NOTIFY, not by the poll,
// which is set to fire only after the wait has given up.
func TestNotifyOtherStore(t *testing.T) {
	t.Parallel()
	writer, watcher, _ := openPair(t, time.Minute)
	w := watcher.Watch(t.Context())
	for i, key := range []string{"k1", "k2", "k3"} {
		v := addDevice(t, writer, key)
		await(t, w, v, 10*time.Second, "the notice did not arrive and the poll is a minute away")
		if i == 0 && listeners(t, writer) != 2 {
			t.Errorf("%d LISTEN connections, want 2", listeners(t, writer))
		}
	}
}

// TestListenDownPolls: with the LISTEN connections cut and unable to come
// back, changes still reach a watcher, by the fallback poll.
func TestListenDownPolls(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	writer, watcher, dsn := openPair(t, 200*time.Millisecond)
	w := watcher.Watch(ctx)
	// New connections to the database are refused from here on (the
	// pools keep the ones they hold), so the listeners cannot reconnect.
	// Only another database's connection may say so.
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	admin, err := sql.Open("pgx", os.Getenv("VEIL_TEST_POSTGRES"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	allow := func(ctx context.Context, on bool) error {
		_, err := admin.ExecContext(ctx, fmt.Sprintf("ALTER DATABASE %q ALLOW_CONNECTIONS %t", name, on))
		return err
	}
	if err := allow(ctx, false); err != nil {
		t.Fatal(err)
	}
	defer allow(context.Background(), true)
	db := store.RawDB(writer)
	var cut int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN%'`).Scan(&cut); err != nil || cut != 2 {
		t.Fatalf("terminated %d LISTEN connections, %v; want 2", cut, err)
	}
	v := addDevice(t, writer, "k1")
	await(t, w, v, 10*time.Second, "the poll did not stand in for the lost LISTEN connection")
	if n := listeners(t, writer); n != 0 {
		t.Errorf("%d LISTEN connections came back; the test wanted none, to show the poll", n)
	}
}
