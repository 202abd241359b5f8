package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// CreateSession stores a session; ErrNotFound when the account does not
// exist.
func (s *sqlStore) CreateSession(ctx context.Context, se Session) error {
	if len(se.TokenHash) == 0 {
		return errors.New("creating session: empty token hash")
	}
	_, err := s.db.ExecContext(ctx, "INSERT INTO sessions (token_hash, account_id, expires_at) VALUES ($1, $2, $3)",
		se.TokenHash, se.AccountID, s.ts(se.ExpiresAt))
	if isForeignKey(err) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("creating session: %w", err)
	}
	return nil
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
	res, err := s.db.ExecContext(ctx, "DELETE FROM sessions WHERE expires_at <= $1", s.ts(now))
	if err != nil {
		return 0, fmt.Errorf("deleting expired sessions: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("deleting expired sessions: %w", err)
	}
	return int(n), nil
}
