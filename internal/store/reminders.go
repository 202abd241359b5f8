package store

import (
	"context"
	"fmt"
	"time"
)

// ExpiringAccounts returns the accounts with an email whose paid time
// ends within (now, before] and whose reminder for that end is not
// queued yet, by id.
func (s *sqlStore) ExpiringAccounts(ctx context.Context, now, before time.Time) ([]Account, error) {
	rows, err := s.rdb.QueryContext(ctx, "SELECT "+accountCols+` FROM accounts
		WHERE email IS NOT NULL AND paid_until > $1 AND paid_until <= $2
		AND (reminded_until IS NULL OR reminded_until <> paid_until) ORDER BY id`, s.ts(now), s.ts(before))
	if err != nil {
		return nil, fmt.Errorf("reading expiring accounts: %w", err)
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("reading expiring accounts: %w", err)
		}
		out = append(out, *a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading expiring accounts: %w", err)
	}
	return out, nil
}

// MarkReminded claims the reminder of the paid period ending at
// paidUntil: one caller gets true, in any number of processes.
func (s *sqlStore) MarkReminded(ctx context.Context, accountID int64, paidUntil time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE accounts SET reminded_until = paid_until
		WHERE id = $1 AND paid_until = $2 AND (reminded_until IS NULL OR reminded_until <> paid_until)`,
		accountID, s.ts(paidUntil))
	if err != nil {
		return false, fmt.Errorf("marking reminder: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("marking reminder: %w", err)
	}
	return n == 1, nil
}
