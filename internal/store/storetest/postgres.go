package storetest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// SQLitePath returns the path of a fresh SQLite database file for tb.
func SQLitePath(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(tb.TempDir(), "veil.db")
}

// PostgresURL creates a database of its own for tb on the server in
// VEIL_TEST_POSTGRES, returns its URL, and drops it in Cleanup. Without
// that variable the test skips, or fails under CI=true, where PostgreSQL
// must be tested.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv("VEIL_TEST_POSTGRES")
	if base == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal("VEIL_TEST_POSTGRES is not set: CI must run the PostgreSQL store tests (scripts/test.sh starts a server)")
		}
		tb.Skip("VEIL_TEST_POSTGRES is not set; skipping PostgreSQL (scripts/test.sh starts a throwaway server)")
	}
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("VEIL_TEST_POSTGRES: %v", err)
	}
	var b [6]byte
	rand.Read(b[:])
	name := fmt.Sprintf("veil_test_%x", b)
	admin := func(stmt string) {
		tb.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Fatalf("connecting to VEIL_TEST_POSTGRES: %v", err)
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, stmt); err != nil {
			tb.Fatalf("%s: %v", stmt, err)
		}
	}
	admin("CREATE DATABASE " + name)
	tb.Cleanup(func() { admin("DROP DATABASE " + name + " WITH (FORCE)") })
	u.Path = "/" + name
	return u.String()
}

// Dialects runs f once per database, as subtests "sqlite" and "postgres",
// with a function that makes a fresh database's DSN.
func Dialects(t *testing.T, f func(t *testing.T, newDB func(testing.TB) string)) {
	for _, d := range []struct {
		name  string
		newDB func(testing.TB) string
	}{{"sqlite", SQLitePath}, {"postgres", PostgresURL}} {
		t.Run(d.name, func(t *testing.T) { f(t, d.newDB) })
	}
}
