package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// MaxRecoveryLinks is how many unexpired recovery links one account may
// have: a request beyond it sends no mail, so that nobody can fill a
// mailbox by asking again and again.
const MaxRecoveryLinks = 3

// CreateRecoveryToken stores a recovery link's token for its account.
// ErrNotFound when the account does not exist, ErrRecoveryLimit when it
// has MaxRecoveryLinks unexpired links at now.
func (s *sqlStore) CreateRecoveryToken(ctx context.Context, t RecoveryToken, now time.Time) error {
	if len(t.TokenHash) == 0 {
		return errors.New("creating recovery token: empty token hash")
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.lockAccount(ctx, tx, t.AccountID); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM recovery_tokens WHERE account_id = $1 AND expires_at > $2",
			t.AccountID, s.ts(now)).Scan(&n); err != nil {
			return err
		}
		if n >= MaxRecoveryLinks {
			return ErrRecoveryLimit
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO recovery_tokens (token_hash, account_id, expires_at) VALUES ($1, $2, $3)",
			t.TokenHash, t.AccountID, s.ts(t.ExpiresAt))
		return err
	})
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrRecoveryLimit):
		return err
	case err != nil:
		return fmt.Errorf("creating recovery token: %w", err)
	}
	return nil
}

// RecoveryTokenByHash returns the link's token if it is unexpired at now,
// or ErrNotFound.
func (s *sqlStore) RecoveryTokenByHash(ctx context.Context, hash []byte, now time.Time) (*RecoveryToken, error) {
	t := RecoveryToken{}
	err := s.rdb.QueryRowContext(ctx, "SELECT token_hash, account_id, expires_at FROM recovery_tokens WHERE token_hash = $1 AND expires_at > $2",
		hash, s.ts(now)).Scan(&t.TokenHash, &t.AccountID, timeCol{&t.ExpiresAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading recovery token: %w", err)
	}
	return &t, nil
}

// UseRecoveryToken spends a recovery link, in one transaction: the token
// unexpired at now goes with every other link of its account, the
// account's access code hash becomes codeHash, and all its sessions end.
// It returns the account. ErrNotFound for a token unknown, expired or
// used; ErrCodeCollision (nothing changed, the token still valid) when
// codeHash is taken.
func (s *sqlStore) UseRecoveryToken(ctx context.Context, hash, codeHash []byte, now time.Time) (int64, error) {
	if len(codeHash) == 0 {
		return 0, errors.New("using recovery token: empty code hash")
	}
	var id int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, "DELETE FROM recovery_tokens WHERE token_hash = $1 AND expires_at > $2 RETURNING account_id",
			hash, s.ts(now)).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE accounts SET code_hash = $1 WHERE id = $2", codeHash, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE account_id = $1", id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM recovery_tokens WHERE account_id = $1", id)
		return err
	})
	switch {
	case errors.Is(err, ErrNotFound):
		return 0, ErrNotFound
	case isUnique(err, "accounts", "code_hash"):
		return 0, ErrCodeCollision
	case err != nil:
		return 0, fmt.Errorf("using recovery token: %w", err)
	}
	return id, nil
}

// DeleteExpiredRecoveryTokens removes the links expired at now.
func (s *sqlStore) DeleteExpiredRecoveryTokens(ctx context.Context, now time.Time) (int, error) {
	return s.deleteExpired(ctx, "recovery_tokens", now)
}
