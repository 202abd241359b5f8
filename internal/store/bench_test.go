package store_test

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"veil/internal/store"
	"veil/internal/store/storetest"
)

// BenchmarkCreateDevice registers devices on SQLite with a table already
// holding 0, 100k and 1M devices (written straight into the file, with
// addresses from 1 up), to show that finding a free tunnel address does
// not grow with the devices held.
func BenchmarkCreateDevice(b *testing.B) {
	for _, held := range []int{0, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("held=%d", held), func(b *testing.B) {
			path := storetest.SQLitePath(b)
			s, err := store.OpenTest(b.Context(), path, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			owner := &store.Account{CodeHash: []byte("bench-owner"), Plan: store.PlanPremium, PaidUntil: time.Now().Add(time.Hour)}
			ownerID, err := s.CreateAccount(b.Context(), owner)
			if err != nil {
				b.Fatal(err)
			}
			if held > 0 {
				fill(b, path, ownerID, held)
			}
			b.ResetTimer()
			var acc int64
			for i := range b.N {
				if i%5 == 0 { // a new account every five devices, as customers have
					b.StopTimer()
					a := &store.Account{CodeHash: fmt.Appendf(nil, "bench-%d", i), Plan: store.PlanPremium, PaidUntil: time.Now().Add(time.Hour)}
					if acc, err = s.CreateAccount(b.Context(), a); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				if _, err := s.CreateDevice(b.Context(), store.NewDevice{AccountID: acc, Name: "d",
					PublicKey: fmt.Sprintf("bench-key-%d", i), MaxDevices: 5, MinIndex: 1, MaxIndex: 1 << 22}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// fill writes n devices of account acc into the SQLite file at path.
func fill(b *testing.B, path string, acc int64, n int) {
	b.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	_, err = db.ExecContext(b.Context(), `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $1)
		INSERT INTO devices (account_id, name, public_key, addr_index, in_map, peer_version, created_at)
		SELECT $2, 'held', 'held-' || x, x, 0, 0, 0 FROM c`, n, acc)
	if err != nil {
		b.Fatal(err)
	}
}
