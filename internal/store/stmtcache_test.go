package store_test

import (
	"strconv"
	"strings"
	"testing"

	"veil/internal/store"
	"veil/internal/store/storetest"
)

// TestStatementCache runs the same statement text again while rows read
// from it are still open on the same connection, and with new arguments
// after, and checks that a statement that fails to prepare still reports
// its error.
func TestStatementCache(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := store.OpenTest(ctx, storetest.SQLitePath(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db := store.RawDB(s) // one connection: every statement below shares it
	if _, err := db.ExecContext(ctx, "CREATE TABLE cache_t (n INTEGER NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := db.ExecContext(ctx, "INSERT INTO cache_t (n) VALUES ($1)", i); err != nil {
			t.Fatal(err)
		}
	}
	const q = "SELECT n FROM cache_t WHERE n >= $1 ORDER BY n"
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, q, 1)
	if err != nil {
		t.Fatal(err)
	}
	var outer, inner []int
	for rows.Next() {
		var n, m int
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		outer = append(outer, n)
		// The same text while rows is open.
		if err := tx.QueryRowContext(ctx, q, 3).Scan(&m); err != nil {
			t.Fatal(err)
		}
		inner = append(inner, m)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if got := ints(outer); got != "1 2 3 4" {
		t.Errorf("outer rows %s, want 1 2 3 4", got)
	}
	if got := ints(inner); got != "3 3 3 3" {
		t.Errorf("inner rows %s, want 3 3 3 3", got)
	}
	// Again after, with other arguments: the cached statement is reset.
	for _, c := range []struct{ from, want int }{{4, 4}, {0, 0}, {2, 2}} {
		var n int
		if err := tx.QueryRowContext(ctx, q, c.from).Scan(&n); err != nil || n != c.want {
			t.Errorf("from %d: %d, %v; want %d", c.from, n, err, c.want)
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO no_such_table (n) VALUES (1)"); err == nil || !strings.Contains(err.Error(), "no_such_table") {
		t.Errorf("a statement that does not prepare: %v, want an error naming the table", err)
	}
}

func ints(s []int) string {
	var b strings.Builder
	for i, n := range s {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}
