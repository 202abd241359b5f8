package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// MaxSessions is how many sessions one account holds at most: a login
// beyond it ends the account's session that ends first (the oldest, the
// lifetime being the same for all), so logins cannot pile up rows.
const MaxSessions = 20

// CreateSession stores a session, ending the account's oldest beyond
// MaxSessions, and records now's day as the account's last use, all in
// one transaction; ErrNotFound when the account does not exist.
func (s *sqlStore) CreateSession(ctx context.Context, se Session, now time.Time) error {
	if len(se.TokenHash) == 0 {
		return errors.New("creating session: empty token hash")
	}
	// No statement needs an earlier one's result, so on PostgreSQL they go
	// as one pipelined transaction. An unknown account fails the insert's
	// foreign key.
	stmts := []stmt{
		// The account's row lock serializes its logins, so that two at
		// once cannot both keep MaxSessions others (on SQLite the write
		// transaction holds the database already).
		{"SELECT 1 FROM accounts WHERE id = $1" + s.d.forUpdate, []any{se.AccountID}},
		{"INSERT INTO sessions (token_hash, account_id, expires_at) VALUES ($1, $2, $3)",
			[]any{se.TokenHash, se.AccountID, s.ts(se.ExpiresAt)}},
		{`DELETE FROM sessions WHERE account_id = $1 AND token_hash <> $2 AND token_hash NOT IN
			(SELECT token_hash FROM sessions WHERE account_id = $1 AND token_hash <> $2 ORDER BY expires_at DESC LIMIT $3)`,
			[]any{se.AccountID, se.TokenHash, MaxSessions - 1}},
		// It writes only when the day changes.
		{"UPDATE accounts SET last_used = $1 WHERE id = $2 AND (last_used IS NULL OR last_used < $1)",
			[]any{s.ts(day(now)), se.AccountID}},
	}
	if !s.d.pg {
		stmts = stmts[1:]
	}
	err := s.execAll(ctx, stmts)
	if isForeignKey(err) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("creating session: %w", err)
	}
	return nil
}

// lockAccount takes the account's row lock for the transaction (on
// SQLite the write transaction holds the database already), or
// ErrNotFound.
func (s *sqlStore) lockAccount(ctx context.Context, tx *sql.Tx, id int64) error {
	var one int
	err := tx.QueryRowContext(ctx, "SELECT 1 FROM accounts WHERE id = $1"+s.d.forUpdate, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// SessionByTokenHash returns the session if it expires after now, or
// ErrInvalidSession.
func (s *sqlStore) SessionByTokenHash(ctx context.Context, hash []byte, now time.Time) (*Session, error) {
	se := Session{}
	err := s.rdb.QueryRowContext(ctx, "SELECT token_hash, account_id, expires_at FROM sessions WHERE token_hash = $1 AND expires_at > $2",
		hash, s.ts(now)).Scan(&se.TokenHash, &se.AccountID, timeCol{&se.ExpiresAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrInvalidSession
	}
	if err != nil {
		return nil, fmt.Errorf("reading session: %w", err)
	}
	return &se, nil
}

// DeleteSession removes one session; removing an unknown one is not an
// error (logging out twice is harmless).
func (s *sqlStore) DeleteSession(ctx context.Context, hash []byte) error {
	if _, err := s.db.ExecContext(ctx, "DELETE FROM sessions WHERE token_hash = $1", hash); err != nil {
		return fmt.Errorf("deleting session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions removes the sessions expired at now.
func (s *sqlStore) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	return s.deleteExpired(ctx, "sessions", now)
}

// deleteExpired removes the rows of table (one with expires_at) expired
// at now.
func (s *sqlStore) deleteExpired(ctx context.Context, table string, now time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, "DELETE FROM "+table+" WHERE expires_at <= $1", s.ts(now))
	if err != nil {
		return 0, fmt.Errorf("deleting expired %s: %w", table, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("deleting expired %s: %w", table, err)
	}
	return int(n), nil
}
