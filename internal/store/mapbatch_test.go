package store_test

import (
	"database/sql"
	"fmt"
	"slices"
	"testing"

	"veil/internal/store"
)

// TestMapBatch: in a batch of map changes on PostgreSQL each change gets
// a version of its own, a failing one is undone alone and gets its error,
// and a change that breaks the connection under the batch costs the
// others nothing (they run again on their own).
func TestMapBatch(t *testing.T) {
	t.Parallel()
	tombstone := func(key string) func(*sql.Tx, int64) (bool, error) {
		return func(tx *sql.Tx, next int64) (bool, error) {
			_, err := tx.Exec("INSERT INTO peer_tombstones (public_key, version, removed_at) VALUES ($1, $2, now())", key, next)
			return err == nil, err
		}
	}
	failing := func(stmt string) func(*sql.Tx, int64) (bool, error) {
		return func(tx *sql.Tx, next int64) (bool, error) {
			if ok, err := tombstone("b")(tx, next); !ok {
				return false, err
			}
			_, err := tx.Exec(stmt)
			return err == nil, err
		}
	}
	unchanged := func(*sql.Tx, int64) (bool, error) { return false, nil }
	// The unchanged third job reads the version after the batch (2) when
	// the batch committed, after the first job's commit (1) when each ran
	// alone.
	for _, tc := range []struct {
		name, stmt string
		third      int64
	}{
		{"error", "SELECT 1/0", 2},
		{"connection lost", "SELECT pg_terminate_backend(pg_backend_pid())", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := store.OpenTest(t.Context(), postgresDB(t), 0)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			// A gateway at version 0 keeps every tombstone.
			g := &store.Gateway{Name: "hold", Location: "se-sto", Endpoint: "192.0.2.1:51820", TokenHash: []byte("h")}
			if _, err := s.CreateGateway(t.Context(), g); err != nil {
				t.Fatal(err)
			}
			if err := s.GatewaySynced(t.Context(), g.ID, 0); err != nil {
				t.Fatal(err)
			}
			vs, errs := store.MapBatch(s, tombstone("a"), failing(tc.stmt), unchanged, tombstone("c"))
			if errs[0] != nil || errs[1] == nil || errs[2] != nil || errs[3] != nil {
				t.Fatalf("errors %v; want only the second", errs)
			}
			if vs[0] != 1 || vs[2] != tc.third || vs[3] != 2 {
				t.Errorf("versions %v; want 1, -, %d, 2", vs, tc.third)
			}
			rows, err := store.RawDB(s).QueryContext(t.Context(), "SELECT public_key, version FROM peer_tombstones ORDER BY public_key")
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var got []string
			for rows.Next() {
				var k string
				var v int64
				if err := rows.Scan(&k, &v); err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprintf("%s@%d", k, v))
			}
			if want := []string{"a@1", "c@2"}; !slices.Equal(got, want) {
				t.Errorf("tombstones %v, want %v", got, want)
			}
			if v, err := s.PeerVersion(t.Context()); err != nil || v != 2 {
				t.Errorf("version %d, %v; want 2", v, err)
			}
		})
	}
}
