package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// CreateVouchers stores one voucher per code hash, all worth days, in one
// transaction: either every code of a batch works or none does.
func (s *sqlStore) CreateVouchers(ctx context.Context, hashes [][]byte, days int, now time.Time) error {
	if days < 1 || days > 3660 {
		return errors.New("creating vouchers: days from 1 to 3660")
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for _, h := range hashes {
			if len(h) == 0 {
				return errors.New("empty code hash")
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO vouchers (code_hash, days, created_at) VALUES ($1, $2, $3)",
				h, days, s.ts(now)); err != nil {
				if isUnique(err, "vouchers", "code_hash") {
					return ErrCodeCollision
				}
				return err
			}
		}
		return nil
	})
	if errors.Is(err, ErrCodeCollision) {
		return ErrCodeCollision
	}
	if err != nil {
		return fmt.Errorf("creating vouchers: %w", err)
	}
	return nil
}

// RedeemVoucher marks the voucher redeemed and records it as the payment
// p with the voucher's days, in one transaction, so that two redemptions
// racing for one code (in one process or several) see one succeed. The
// voucher row keeps no account; the billing record, like any payment's,
// does. ErrNotFound when p's account does not exist (the voucher stays
// unspent).
func (s *sqlStore) RedeemVoucher(ctx context.Context, hash []byte, p Payment, now time.Time) (int, error) {
	var days int
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, "SELECT 1 FROM accounts WHERE id = $1", p.AccountID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		err = tx.QueryRowContext(ctx, "UPDATE vouchers SET redeemed_at = $1 WHERE code_hash = $2 AND redeemed_at IS NULL RETURNING days",
			s.ts(now), hash).Scan(&days)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrVoucherInvalid
		}
		if err != nil {
			return err
		}
		p.Days = days
		applied, err := s.recordPaymentTx(ctx, tx, p, now)
		if err == nil && !applied {
			err = errors.New("voucher payment reference already recorded")
		}
		return err
	})
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrVoucherInvalid):
		return 0, err
	case err != nil:
		return 0, fmt.Errorf("redeeming voucher: %w", err)
	}
	return days, nil
}
