package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

const accountCols = "id, code_hash, email, plan, paid_until, trial_until, marketing_consent, restricted, legal_hold, last_used, created_at, lang"

func scanAccount(row interface{ Scan(...any) error }) (*Account, error) {
	var a Account
	var email, lang sql.NullString
	if err := row.Scan(&a.ID, &a.CodeHash, &email, &a.Plan, timeCol{&a.PaidUntil}, timeCol{&a.TrialUntil},
		&a.MarketingConsent, &a.Restricted, &a.LegalHold, timeCol{&a.LastUsed}, timeCol{&a.CreatedAt}, &lang); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	a.Email, a.Lang = email.String, lang.String
	return &a, nil
}

// nullString maps "" to NULL.
func nullString(v string) any {
	if v == "" {
		return nil
	}
	return v
}

// CreateAccount inserts a; it fills in a.ID, and a.CreatedAt when zero.
func (s *sqlStore) CreateAccount(ctx context.Context, a *Account) (int64, error) {
	if len(a.CodeHash) == 0 || a.Plan == "" {
		return 0, errors.New("creating account: code hash and plan are required")
	}
	created := a.CreatedAt
	if created.IsZero() {
		created = s.now()
	}
	var id int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO accounts
			(code_hash, email, plan, paid_until, trial_until, marketing_consent, restricted, legal_hold, last_used, created_at, lang)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
			a.CodeHash, nullString(a.Email), a.Plan, s.ts(a.PaidUntil), s.ts(a.TrialUntil),
			a.MarketingConsent, a.Restricted, a.LegalHold, s.ts(day(a.LastUsed)), s.ts(created), nullString(a.Lang)).Scan(&id)
	})
	if isUnique(err, "accounts", "code_hash") {
		return 0, ErrCodeCollision
	}
	if err != nil {
		return 0, fmt.Errorf("creating account: %w", err)
	}
	a.ID = id
	a.CreatedAt = created.UTC().Truncate(time.Microsecond)
	return id, nil
}

// AccountByID returns the account or ErrNotFound.
func (s *sqlStore) AccountByID(ctx context.Context, id int64) (*Account, error) {
	a, err := scanAccount(s.rdb.QueryRowContext(ctx, "SELECT "+accountCols+" FROM accounts WHERE id = $1", id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("reading account: %w", err)
	}
	return a, err
}

// AccountByCodeHash returns the account or ErrNotFound.
func (s *sqlStore) AccountByCodeHash(ctx context.Context, hash []byte) (*Account, error) {
	a, err := scanAccount(s.rdb.QueryRowContext(ctx, "SELECT "+accountCols+" FROM accounts WHERE code_hash = $1", hash))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("reading account: %w", err)
	}
	return a, err
}

// UpdateAccount applies u. A plan change is a peer-map change (the plan
// travels with each peer), so it bumps the version for the account's
// peers; activity changes wait for SyncPeerActivity.
func (s *sqlStore) UpdateAccount(ctx context.Context, id int64, u AccountUpdate) error {
	var set []string
	var args []any
	add := func(col string, v any) {
		args = append(args, v)
		set = append(set, fmt.Sprintf("%s = $%d", col, len(args)))
	}
	if u.Email != nil {
		add("email", nullString(*u.Email))
	}
	if u.Lang != nil {
		add("lang", nullString(*u.Lang))
	}
	if u.Plan != nil {
		if *u.Plan == "" {
			return errors.New("updating account: empty plan")
		}
		add("plan", *u.Plan)
	}
	if u.PaidUntil != nil {
		add("paid_until", s.ts(*u.PaidUntil))
	}
	if u.TrialUntil != nil {
		add("trial_until", s.ts(*u.TrialUntil))
	}
	if u.MarketingConsent != nil {
		add("marketing_consent", *u.MarketingConsent)
	}
	if u.Restricted != nil {
		add("restricted", *u.Restricted)
	}
	if u.LegalHold != nil {
		add("legal_hold", *u.LegalHold)
	}
	if u.CodeHash != nil {
		if len(u.CodeHash) == 0 {
			return errors.New("updating account: empty code hash")
		}
		add("code_hash", u.CodeHash)
	}
	args = append(args, id)
	where := fmt.Sprintf(" WHERE id = $%d", len(args))
	update := func(ctx context.Context, tx *sql.Tx) error {
		if len(set) == 0 {
			var one int
			err := tx.QueryRowContext(ctx, "SELECT 1 FROM accounts"+where, id).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		res, err := tx.ExecContext(ctx, "UPDATE accounts SET "+strings.Join(set, ", ")+where, args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrNotFound
		}
		return nil
	}
	var err error
	if u.Plan == nil {
		err = s.tx(ctx, func(tx *sql.Tx) error { return update(ctx, tx) })
	} else {
		_, err = s.mapTx(ctx, func(tx *sql.Tx, next int64) (bool, error) {
			var old string
			if err := tx.QueryRowContext(ctx, "SELECT plan FROM accounts WHERE id = $1", id).Scan(&old); err != nil {
				if errors.Is(err, sql.ErrNoRows) {
					return false, ErrNotFound
				}
				return false, err
			}
			if err := update(ctx, tx); err != nil || old == *u.Plan {
				return false, err
			}
			res, err := tx.ExecContext(ctx, "UPDATE devices SET peer_version = $1 WHERE account_id = $2 AND in_map", next, id)
			if err != nil {
				return false, err
			}
			n, err := res.RowsAffected()
			return n > 0, err
		})
	}
	switch {
	case errors.Is(err, ErrNotFound):
		return ErrNotFound
	case isUnique(err, "accounts", "code_hash"):
		return ErrCodeCollision
	case err != nil:
		return fmt.Errorf("updating account: %w", err)
	}
	return nil
}

// DeleteAccount removes the account; devices and sessions go by cascade,
// and the devices in the peer map leave it. The files are wiped of it
// before it returns.
func (s *sqlStore) DeleteAccount(ctx context.Context, id int64) error {
	_, err := s.mapTx(ctx, func(tx *sql.Tx, next int64) (bool, error) {
		res, err := tx.ExecContext(ctx, `INSERT INTO peer_tombstones (public_key, version, removed_at)
			SELECT public_key, $1, $2 FROM devices WHERE account_id = $3 AND in_map
			ON CONFLICT (public_key) DO UPDATE SET version = excluded.version, removed_at = excluded.removed_at`,
			next, s.ts(s.now()), id)
		if err != nil {
			return false, err
		}
		left, err := res.RowsAffected()
		if err != nil {
			return false, err
		}
		res, err = tx.ExecContext(ctx, "DELETE FROM accounts WHERE id = $1", id)
		if err != nil {
			return false, err
		}
		if n, err := res.RowsAffected(); err != nil {
			return false, err
		} else if n == 0 {
			return false, ErrNotFound
		}
		return left > 0, nil
	})
	if errors.Is(err, ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("deleting account: %w", err)
	}
	s.wipe(ctx, personalTables...)
	return nil
}

// CountAccounts returns the number of accounts.
func (s *sqlStore) CountAccounts(ctx context.Context) (int, error) {
	var n int
	if err := s.rdb.QueryRowContext(ctx, "SELECT COUNT(*) FROM accounts").Scan(&n); err != nil {
		return 0, fmt.Errorf("counting accounts: %w", err)
	}
	return n, nil
}
