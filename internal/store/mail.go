package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const mailCols = "id, kind, account_id, to_addr, subject, body, attempts, next_attempt_at, created_at"

func (s *sqlStore) mails(ctx context.Context, q string, args ...any) ([]Mail, error) {
	rows, err := s.rdb.QueryContext(ctx, "SELECT "+mailCols+" FROM mail_outbox WHERE "+q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Mail
	for rows.Next() {
		var m Mail
		var acc sql.NullInt64
		if err := rows.Scan(&m.ID, &m.Kind, &acc, &m.To, &m.Subject, &m.Body, &m.Attempts,
			timeCol{&m.NextAt}, timeCol{&m.CreatedAt}); err != nil {
			return nil, err
		}
		m.AccountID = acc.Int64
		out = append(out, m)
	}
	return out, rows.Err()
}

// nullID maps 0 to NULL.
func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// QueueMail adds m to the outbox, due at once unless m.NextAt is set.
func (s *sqlStore) QueueMail(ctx context.Context, m *Mail) (int64, error) {
	if m.Kind != MailTransactional && m.Kind != MailMarketing {
		return 0, fmt.Errorf("queueing mail: unknown kind %q", m.Kind)
	}
	if m.To == "" {
		return 0, errors.New("queueing mail: no recipient")
	}
	now := s.now()
	if m.CreatedAt.IsZero() {
		m.CreatedAt = now
	}
	if m.NextAt.IsZero() {
		m.NextAt = m.CreatedAt
	}
	err := s.db.QueryRowContext(ctx, `INSERT INTO mail_outbox (kind, account_id, to_addr, subject, body, attempts, next_attempt_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
		m.Kind, nullID(m.AccountID), m.To, m.Subject, m.Body, m.Attempts, s.ts(m.NextAt), s.ts(m.CreatedAt)).Scan(&m.ID)
	if isForeignKey(err) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("queueing mail: %w", err)
	}
	return m.ID, nil
}

// DueMail returns the messages due at now, oldest first.
func (s *sqlStore) DueMail(ctx context.Context, now time.Time, limit int) ([]Mail, error) {
	ms, err := s.mails(ctx, "next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2", s.ts(now), limit)
	if err != nil {
		return nil, fmt.Errorf("reading due mail: %w", err)
	}
	return ms, nil
}

// AccountMail returns the account's queued messages.
func (s *sqlStore) AccountMail(ctx context.Context, accountID int64) ([]Mail, error) {
	ms, err := s.mails(ctx, "account_id = $1 ORDER BY id", accountID)
	if err != nil {
		return nil, fmt.Errorf("reading account mail: %w", err)
	}
	return ms, nil
}

// DeleteMail removes a message from the outbox.
func (s *sqlStore) DeleteMail(ctx context.Context, id int64) error {
	if _, err := s.db.ExecContext(ctx, "DELETE FROM mail_outbox WHERE id = $1", id); err != nil {
		return fmt.Errorf("deleting mail: %w", err)
	}
	return nil
}

// RetryMail records a failed attempt.
func (s *sqlStore) RetryMail(ctx context.Context, id int64, attempts int, next time.Time) error {
	if _, err := s.db.ExecContext(ctx, "UPDATE mail_outbox SET attempts = $1, next_attempt_at = $2 WHERE id = $3",
		attempts, s.ts(next), id); err != nil {
		return fmt.Errorf("rescheduling mail: %w", err)
	}
	return nil
}

// DeleteMailBefore removes messages queued before cutoff.
func (s *sqlStore) DeleteMailBefore(ctx context.Context, cutoff time.Time) (int, error) {
	n, err := s.deleted(ctx, "DELETE FROM mail_outbox WHERE created_at < $1", s.ts(cutoff))
	if err != nil {
		return 0, fmt.Errorf("deleting old mail: %w", err)
	}
	if n > 0 {
		s.wipe(ctx, "mail_outbox")
	}
	return n, nil
}
