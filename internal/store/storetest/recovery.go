package storetest

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"veil/internal/store"
)

// testSessionLimit: an account holds at most store.MaxSessions sessions;
// a login beyond them ends the oldest, never the new one nor another
// account's.
func testSessionLimit(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	ctx := t.Context()
	now := base()
	a := newAccount(t, s, time.Time{})
	other := newAccount(t, s, time.Time{})
	otherSession := store.Session{TokenHash: Random(t, 32), AccountID: other.ID, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateSession(ctx, otherSession, now); err != nil {
		t.Fatal(err)
	}
	var hashes [][]byte
	for i := range store.MaxSessions + 5 {
		se := store.Session{TokenHash: Random(t, 32), AccountID: a.ID, ExpiresAt: now.Add(time.Hour + time.Duration(i)*time.Second)}
		if err := s.CreateSession(ctx, se, now); err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, se.TokenHash)
	}
	// Sessions with the same end as the newest (logins in one second)
	// never push the new one out.
	same := store.Session{TokenHash: Random(t, 32), AccountID: a.ID, ExpiresAt: now.Add(time.Hour + time.Duration(store.MaxSessions+4)*time.Second)}
	if err := s.CreateSession(ctx, same, now); err != nil {
		t.Fatal(err)
	}
	hashes = append(hashes, same.TokenHash)
	live := 0
	for i, h := range hashes {
		_, err := s.SessionByTokenHash(ctx, h, now)
		if err == nil {
			live++
		}
		if kept := i >= len(hashes)-store.MaxSessions; kept != (err == nil) {
			t.Errorf("session %d of %d: kept %v, err %v", i+1, len(hashes), err == nil, err)
		}
	}
	if live != store.MaxSessions {
		t.Errorf("%d live sessions, want %d", live, store.MaxSessions)
	}
	if _, err := s.SessionByTokenHash(ctx, otherSession.TokenHash, now); err != nil {
		t.Errorf("another account's session: %v", err)
	}

	// Logins at once into one account still leave it MaxSessions: each
	// holds the account's lock from its count to its commit. Rounds of
	// logins started together, each round's count taken after it (a later
	// login would remove what a race left).
	busy := newAccount(t, s, time.Time{})
	var tokens [][]byte
	for round := range 10 {
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			se := store.Session{TokenHash: Random(t, 32), AccountID: busy.ID, ExpiresAt: now.Add(time.Hour + time.Duration(len(tokens))*time.Second)}
			tokens = append(tokens, se.TokenHash)
			wg.Go(func() {
				<-start
				errs <- s.CreateSession(ctx, se, now)
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("concurrent login: %v", err)
			}
		}
		n := 0
		for _, h := range tokens {
			if _, err := s.SessionByTokenHash(ctx, h, now); err == nil {
				n++
			}
		}
		if want := min(len(tokens), store.MaxSessions); n != want {
			t.Fatalf("round %d, %d logins in all, 8 at once: %d sessions, want %d", round+1, len(tokens), n, want)
		}
	}
}

// testRecoveryTokens: a link is valid until it expires or is used; using
// it sets the new code hash, ends every session and link of the account
// and nothing of another's; a taken code hash changes nothing.
func testRecoveryTokens(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	ctx := t.Context()
	now := base()
	a := newAccount(t, s, time.Time{})
	other := newAccount(t, s, time.Time{})
	link := func(acc int64, exp time.Time) []byte {
		t.Helper()
		h := Random(t, 32)
		if err := s.CreateRecoveryToken(ctx, store.RecoveryToken{TokenHash: h, AccountID: acc, ExpiresAt: exp}, now); err != nil {
			t.Fatalf("CreateRecoveryToken: %v", err)
		}
		return h
	}
	wantErr(t, "link of an unknown account",
		s.CreateRecoveryToken(ctx, store.RecoveryToken{TokenHash: Random(t, 32), AccountID: a.ID + 1000, ExpiresAt: now.Add(time.Hour)}, now), store.ErrNotFound)
	expired := link(a.ID, now.Add(-time.Second))
	first, second := link(a.ID, now.Add(time.Hour)), link(a.ID, now.Add(time.Hour))
	link(a.ID, now.Add(time.Hour))
	wantErr(t, "a link beyond the limit",
		s.CreateRecoveryToken(ctx, store.RecoveryToken{TokenHash: Random(t, 32), AccountID: a.ID, ExpiresAt: now.Add(time.Hour)}, now), store.ErrRecoveryLimit)
	otherLink := link(other.ID, now.Add(time.Hour))
	sess := newSession(t, s, a.ID, now)
	otherSess := newSession(t, s, other.ID, now)

	if got, err := s.RecoveryTokenByHash(ctx, first, now); err != nil || got.AccountID != a.ID || !bytes.Equal(got.TokenHash, first) {
		t.Errorf("RecoveryTokenByHash = %+v, %v", got, err)
	}
	_, err := s.RecoveryTokenByHash(ctx, expired, now)
	wantErr(t, "RecoveryTokenByHash of an expired link", err, store.ErrNotFound)
	_, err = s.UseRecoveryToken(ctx, expired, Random(t, 32), now)
	wantErr(t, "using an expired link", err, store.ErrNotFound)
	_, err = s.UseRecoveryToken(ctx, first, other.CodeHash, now)
	wantErr(t, "using a link with a taken code hash", err, store.ErrCodeCollision)
	if _, err := s.RecoveryTokenByHash(ctx, first, now); err != nil {
		t.Errorf("the link after a collision: %v, want still valid", err)
	}

	code := Random(t, 32)
	id, err := s.UseRecoveryToken(ctx, first, code, now)
	if err != nil || id != a.ID {
		t.Fatalf("UseRecoveryToken = %d, %v", id, err)
	}
	if got, err := s.AccountByCodeHash(ctx, code); err != nil || got.ID != a.ID {
		t.Errorf("account by the new code: %+v, %v", got, err)
	}
	if _, err := s.AccountByCodeHash(ctx, a.CodeHash); err == nil {
		t.Errorf("the old code hash still finds the account")
	}
	_, err = s.SessionByTokenHash(ctx, sess, now)
	wantErr(t, "a session after recovery", err, store.ErrInvalidSession)
	_, err = s.UseRecoveryToken(ctx, first, Random(t, 32), now)
	wantErr(t, "using a link twice", err, store.ErrNotFound)
	_, err = s.RecoveryTokenByHash(ctx, second, now)
	wantErr(t, "another link of the account after recovery", err, store.ErrNotFound)
	if _, err := s.RecoveryTokenByHash(ctx, otherLink, now); err != nil {
		t.Errorf("another account's link: %v", err)
	}
	if _, err := s.SessionByTokenHash(ctx, otherSess, now); err != nil {
		t.Errorf("another account's session: %v", err)
	}

	if n, err := s.DeleteExpiredRecoveryTokens(ctx, now.Add(2*time.Hour)); err != nil || n != 1 {
		t.Errorf("DeleteExpiredRecoveryTokens = %d, %v; want the other account's one", n, err)
	}
}
