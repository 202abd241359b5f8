package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"veil/internal/store"
)

// TestConcurrentWrites sends many writes at once, so that on SQLite they
// share commits: a device registration whose key is taken fails alone,
// a cancelled caller loses only its own write, and every other write is
// stored exactly once, with a peer-map version and an address of its own.
func TestConcurrentWrites(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, newDB func(testing.TB) string) {
		ctx := t.Context()
		s, err := store.OpenTest(ctx, newDB(t), 0)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		const n = 60
		ids := make([]int64, n)
		for i := range ids {
			a := &store.Account{CodeHash: fmt.Appendf(nil, "batch-%d", i), Plan: store.PlanPremium, PaidUntil: time.Now().Add(time.Hour)}
			if ids[i], err = s.CreateAccount(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		// A gateway synced at 0 keeps the history, so the delta below is one.
		g := &store.Gateway{Name: "hold", Location: "se-sto", Endpoint: "192.0.2.1:51820", TokenHash: []byte("hold-token")}
		if _, err := s.CreateGateway(ctx, g); err != nil {
			t.Fatal(err)
		}
		if err := s.GatewaySynced(ctx, g.ID, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateDevice(ctx, store.NewDevice{AccountID: ids[0], Name: "first", PublicKey: "taken",
			MaxDevices: 5, MinIndex: 1, MaxIndex: 1 << 20}); err != nil {
			t.Fatal(err)
		}
		v0, err := s.PeerVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		errs := make([]error, 3*n)
		var wg sync.WaitGroup
		for i := range n {
			key := fmt.Sprintf("key-%d", i)
			if i%10 == 3 {
				key = "taken"
			}
			wg.Go(func() {
				_, errs[i] = s.CreateDevice(ctx, store.NewDevice{AccountID: ids[i], Name: "d", PublicKey: key,
					MaxDevices: 5, MinIndex: 1, MaxIndex: 1 << 20})
			})
			wg.Go(func() {
				errs[n+i] = s.CreateSession(ctx, store.Session{TokenHash: fmt.Appendf(nil, "tok-%d", i), AccountID: ids[i], ExpiresAt: time.Now().Add(time.Hour)}, time.Now())
			})
			wg.Go(func() {
				errs[2*n+i] = s.CreateSession(cancelled, store.Session{TokenHash: fmt.Appendf(nil, "gone-%d", i), AccountID: ids[i], ExpiresAt: time.Now().Add(time.Hour)}, time.Now())
			})
		}
		wg.Wait()
		registered := 0
		for i := range n {
			if i%10 == 3 {
				if !errors.Is(errs[i], store.ErrDuplicateKey) {
					t.Errorf("registering a taken key: %v, want ErrDuplicateKey", errs[i])
				}
			} else if errs[i] != nil {
				t.Errorf("device %d: %v", i, errs[i])
			} else {
				registered++
			}
			if errs[n+i] != nil {
				t.Errorf("session %d: %v", i, errs[n+i])
			}
			if _, err := s.SessionByTokenHash(ctx, fmt.Appendf(nil, "tok-%d", i), time.Now()); err != nil {
				t.Errorf("session %d not stored: %v", i, err)
			}
			if errs[2*n+i] == nil {
				t.Errorf("session %d with a cancelled context: no error", i)
			}
			if _, err := s.SessionByTokenHash(ctx, fmt.Appendf(nil, "gone-%d", i), time.Now()); !errors.Is(err, store.ErrInvalidSession) {
				t.Errorf("session %d with a cancelled context: %v, want ErrInvalidSession", i, err)
			}
		}
		v1, err := s.PeerVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v1-v0 != int64(registered) {
			t.Errorf("peer version moved by %d for %d registrations", v1-v0, registered)
		}
		ch, err := s.PeersSince(ctx, v0)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Full {
			t.Fatal("got the full map, want a delta")
		}
		addrs := map[int64]bool{}
		for _, p := range ch.Peers {
			if p.PublicKey == "taken" {
				t.Errorf("the taken key is in the delta again")
			}
			if addrs[p.AddrIndex] {
				t.Errorf("two peers at address %d", p.AddrIndex)
			}
			addrs[p.AddrIndex] = true
		}
		if len(ch.Peers) != registered {
			t.Errorf("delta holds %d peers, want %d", len(ch.Peers), registered)
		}
	})
}
