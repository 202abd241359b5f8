package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// RecordPayment stores a payment made at now and, the first time it is
// told of it, extends the account's paid time by p.Days from the later of
// now and its current end, on the premium plan, in one transaction. A payment
// already recorded (same processor and reference) changes nothing and
// reports applied false. A payment for an account that no longer exists
// (AccountID 0, or erased) is recorded detached, as tax law wants it
// kept. A payment whose refund was told first is recorded refunded and
// extends nothing. The account's devices move in the peer map at once (a
// free device loses its cap).
func (s *sqlStore) RecordPayment(ctx context.Context, p Payment, now time.Time) (applied bool, err error) {
	if p.Processor == "" || p.Reference == "" || p.Days <= 0 || p.AmountCents < 0 {
		return false, errors.New("recording payment: processor, reference and a positive duration are required")
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		applied, err = s.recordPaymentTx(ctx, tx, p, now)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("recording payment: %w", err)
	}
	if applied && p.AccountID != 0 {
		s.syncPaid(ctx, p.AccountID, now)
	}
	return applied, nil
}

// recordPaymentTx is RecordPayment inside the caller's transaction. A
// payment of an account that an affiliate referred credits the
// affiliate p.AffiliatePercent of its amount, once.
func (s *sqlStore) recordPaymentTx(ctx context.Context, tx *sql.Tx, p Payment, now time.Time) (bool, error) {
	now = now.UTC().Truncate(time.Microsecond)
	var account any
	var paid time.Time
	if p.AccountID != 0 {
		err := tx.QueryRowContext(ctx, "SELECT paid_until FROM accounts WHERE id = $1", p.AccountID).Scan(timeCol{&paid})
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return false, err
		default:
			account = p.AccountID
		}
	}
	var recordID int64
	err := tx.QueryRowContext(ctx, `INSERT INTO billing_records
		(account_id, processor, reference, product, days, amount_cents, currency, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (processor, reference) DO NOTHING RETURNING id`,
		account, p.Processor, p.Reference, p.Product, p.Days, p.AmountCents, p.Currency, s.ts(now)).Scan(&recordID)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil // a repeat: nothing more to do
	}
	if err != nil {
		return false, err
	}
	var refunded time.Time
	err = tx.QueryRowContext(ctx, "DELETE FROM pending_refunds WHERE processor = $1 AND reference = $2 RETURNING refunded_at",
		p.Processor, p.Reference).Scan(timeCol{&refunded})
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return false, err
	default:
		// Refunded before it was told: recorded as refunded, it buys nothing.
		_, err := tx.ExecContext(ctx, "UPDATE billing_records SET refunded_at = $1 WHERE id = $2", s.ts(refunded), recordID)
		return true, err
	}
	if account == nil {
		return true, nil
	}
	if err := s.creditAffiliate(ctx, tx, recordID, p, now); err != nil {
		return false, err
	}
	return true, s.extendPaid(ctx, tx, p.AccountID, paid, p.Days, p.Plan, now)
}

// extendPaid moves the account's paid time, which ends at paid, days
// further from the later of paid and now, on plan (empty: premium).
func (s *sqlStore) extendPaid(ctx context.Context, tx *sql.Tx, accountID int64, paid time.Time, days int, plan string, now time.Time) error {
	if plan == "" {
		plan = PlanPremium
	}
	from := now
	if paid.After(now) {
		from = paid
	}
	_, err := tx.ExecContext(ctx, "UPDATE accounts SET paid_until = $1, plan = $2 WHERE id = $3",
		s.ts(from.AddDate(0, 0, days)), plan, accountID)
	return err
}

// ErrAttached is returned for a billing record that already has its
// account.
var ErrAttached = errors.New("the billing record already belongs to an account")

// AttachPayment gives a detached billing record (a payment whose
// reference named no account) to an account, and the account the paid
// time the payment bought, counted from now or from its current end,
// unless the payment was refunded. An affiliate who referred the
// account is credited affiliatePercent of it, as for a payment that
// named the account.
func (s *sqlStore) AttachPayment(ctx context.Context, recordID, accountID int64, affiliatePercent int, now time.Time) error {
	now = now.UTC().Truncate(time.Microsecond)
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var owner sql.NullInt64
		var refunded time.Time
		p := Payment{AccountID: accountID, AffiliatePercent: affiliatePercent}
		err := tx.QueryRowContext(ctx, "SELECT account_id, days, amount_cents, currency, refunded_at FROM billing_records WHERE id = $1", recordID).
			Scan(&owner, &p.Days, &p.AmountCents, &p.Currency, timeCol{&refunded})
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if owner.Valid {
			return ErrAttached
		}
		var paid time.Time
		err = tx.QueryRowContext(ctx, "SELECT paid_until FROM accounts WHERE id = $1", accountID).Scan(timeCol{&paid})
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE billing_records SET account_id = $1 WHERE id = $2", accountID, recordID); err != nil {
			return err
		}
		if !refunded.IsZero() {
			return nil // refunded: it buys nothing
		}
		if err := s.creditAffiliate(ctx, tx, recordID, p, now); err != nil {
			return err
		}
		return s.extendPaid(ctx, tx, accountID, paid, p.Days, "", now)
	})
	if err != nil {
		return fmt.Errorf("attaching payment: %w", err)
	}
	s.syncPaid(ctx, accountID, now)
	return nil
}

// RefundPayment marks the payment refunded at now and moves the paid time
// of its account, if it has one, back by the days it bought, to no earlier
// than now. A refund of a payment not recorded yet is kept until the
// payment arrives (RecordPayment).
func (s *sqlStore) RefundPayment(ctx context.Context, processor, reference string, now time.Time) (applied bool, err error) {
	now = now.UTC().Truncate(time.Microsecond)
	var refundedFor int64 // the account whose paid time the refund shortened
	err = s.tx(ctx, func(tx *sql.Tx) error {
		applied, refundedFor = false, 0
		var id int64
		var owner sql.NullInt64
		var days int
		var refunded time.Time
		err := tx.QueryRowContext(ctx, "SELECT id, account_id, days, refunded_at FROM billing_records WHERE processor = $1 AND reference = $2",
			processor, reference).Scan(&id, &owner, &days, timeCol{&refunded})
		if errors.Is(err, sql.ErrNoRows) {
			// Processors do not promise order: keep the refund for its payment.
			res, err := tx.ExecContext(ctx, `INSERT INTO pending_refunds (processor, reference, refunded_at) VALUES ($1, $2, $3)
				ON CONFLICT (processor, reference) DO NOTHING`, processor, reference, s.ts(now))
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			applied = n > 0
			return err
		}
		if err != nil || !refunded.IsZero() {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE billing_records SET refunded_at = $1 WHERE id = $2", s.ts(now), id); err != nil {
			return err
		}
		applied = true
		if err := s.reverseAffiliate(ctx, tx, id, now); err != nil {
			return err
		}
		if !owner.Valid {
			return nil
		}
		var paid time.Time
		if err := tx.QueryRowContext(ctx, "SELECT paid_until FROM accounts WHERE id = $1", owner.Int64).Scan(timeCol{&paid}); err != nil {
			return err
		}
		back := paid.AddDate(0, 0, -days)
		if back.Before(now) {
			back = now
		}
		if !back.Before(paid) {
			return nil // the paid time had run out already
		}
		_, err = tx.ExecContext(ctx, "UPDATE accounts SET paid_until = $1 WHERE id = $2", s.ts(back), owner.Int64)
		refundedFor = owner.Int64
		return err
	})
	if err != nil {
		return false, fmt.Errorf("refunding payment: %w", err)
	}
	if refundedFor != 0 {
		s.syncPaid(ctx, refundedFor, now)
	}
	return applied, nil
}

// DeleteBillingBefore removes the billing records made before cutoff, and
// the refunds told before cutoff whose payment never came.
func (s *sqlStore) DeleteBillingBefore(ctx context.Context, cutoff time.Time) (int, error) {
	n, err := s.deleted(ctx, "DELETE FROM billing_records WHERE created_at < $1", s.ts(cutoff))
	if err != nil {
		return 0, fmt.Errorf("deleting old billing records: %w", err)
	}
	m, err := s.deleted(ctx, "DELETE FROM pending_refunds WHERE refunded_at < $1", s.ts(cutoff))
	if err != nil {
		return 0, fmt.Errorf("deleting old refunds: %w", err)
	}
	return n + m, nil
}

// BillingRecords lists the records made in [from, to), oldest first.
func (s *sqlStore) BillingRecords(ctx context.Context, from, to time.Time) ([]BillingRecord, error) {
	q := `SELECT id, account_id, processor, reference, product, days, amount_cents, currency, created_at, refunded_at
		FROM billing_records WHERE TRUE`
	var args []any
	if !from.IsZero() {
		args = append(args, s.ts(from))
		q += fmt.Sprintf(" AND created_at >= $%d", len(args))
	}
	if !to.IsZero() {
		args = append(args, s.ts(to))
		q += fmt.Sprintf(" AND created_at < $%d", len(args))
	}
	rows, err := s.rdb.QueryContext(ctx, q+" ORDER BY created_at, id", args...)
	if err != nil {
		return nil, fmt.Errorf("reading billing records: %w", err)
	}
	defer rows.Close()
	var out []BillingRecord
	for rows.Next() {
		var r BillingRecord
		var account sql.NullInt64
		if err := rows.Scan(&r.ID, &account, &r.Processor, &r.Reference, &r.Product, &r.Days,
			&r.AmountCents, &r.Currency, timeCol{&r.CreatedAt}, timeCol{&r.RefundedAt}); err != nil {
			return nil, fmt.Errorf("reading billing records: %w", err)
		}
		r.AccountID = account.Int64
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading billing records: %w", err)
	}
	return out, nil
}
