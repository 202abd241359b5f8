package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Ledger entry kinds.
const (
	ledgerCredit   = "credit"
	ledgerReversal = "reversal"
	ledgerPayout   = "payout"
)

// JoinAffiliate makes the account an affiliate with code; an account that
// already is one keeps its code.
func (s *sqlStore) JoinAffiliate(ctx context.Context, accountID int64, code string, now time.Time) (*Affiliate, error) {
	if a, err := s.AffiliateByAccount(ctx, accountID); err == nil || !errors.Is(err, ErrNotFound) {
		return a, err
	}
	_, err := s.db.ExecContext(ctx, "INSERT INTO affiliates (account_id, code, created_at) VALUES ($1, $2, $3) ON CONFLICT (account_id) DO NOTHING",
		accountID, code, s.ts(now))
	switch {
	case isUnique(err, "affiliates", "code"):
		return nil, ErrDuplicateName
	case isForeignKey(err):
		return nil, ErrNotFound
	case err != nil:
		return nil, fmt.Errorf("joining affiliate program: %w", err)
	}
	return s.AffiliateByAccount(ctx, accountID)
}

// AffiliateByAccount returns the account's affiliate with its numbers.
func (s *sqlStore) AffiliateByAccount(ctx context.Context, accountID int64) (*Affiliate, error) {
	return s.affiliate(ctx, "account_id = $1", accountID)
}

// AffiliateByCode returns the affiliate whose referral code is code.
func (s *sqlStore) AffiliateByCode(ctx context.Context, code string) (*Affiliate, error) {
	return s.affiliate(ctx, "code = $1", code)
}

func (s *sqlStore) affiliate(ctx context.Context, where string, arg any) (*Affiliate, error) {
	as, err := s.affiliates(ctx, where, arg)
	if err != nil {
		return nil, err
	}
	if len(as) == 0 {
		return nil, ErrNotFound
	}
	return &as[0], nil
}

// Affiliates lists every affiliate, by code.
func (s *sqlStore) Affiliates(ctx context.Context) ([]Affiliate, error) {
	return s.affiliates(ctx, "TRUE")
}

// affiliates reads the affiliates matching where, with their numbers,
// from one snapshot.
func (s *sqlStore) affiliates(ctx context.Context, where string, args ...any) ([]Affiliate, error) {
	var out []Affiliate
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		out = nil
		rows, err := tx.QueryContext(ctx, `SELECT a.account_id, a.code, a.created_at,
			(SELECT COUNT(*) FROM referrals r WHERE r.affiliate_id = a.account_id),
			(SELECT COUNT(*) FROM affiliate_ledger l WHERE l.affiliate_id = a.account_id AND l.kind = 'credit')
			FROM affiliates a WHERE `+where+" ORDER BY a.code", args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			a := Affiliate{Balances: map[string]int64{}}
			if err := rows.Scan(&a.AccountID, &a.Code, timeCol{&a.CreatedAt}, &a.Signups, &a.Payments); err != nil {
				return err
			}
			out = append(out, a)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		for i := range out {
			bal, err := tx.QueryContext(ctx, `SELECT currency, SUM(CASE WHEN kind = 'credit' THEN amount_cents ELSE -amount_cents END)
				FROM affiliate_ledger WHERE affiliate_id = $1 GROUP BY currency ORDER BY currency`, out[i].AccountID)
			if err != nil {
				return err
			}
			for bal.Next() {
				var cur string
				var sum int64
				if err := bal.Scan(&cur, &sum); err != nil {
					bal.Close()
					return err
				}
				out[i].Balances[cur] = sum
			}
			bal.Close()
			if err := bal.Err(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading affiliates: %w", err)
	}
	return out, nil
}

// Refer links a new account to its affiliate. An account refers nobody
// to itself, and is referred once.
func (s *sqlStore) Refer(ctx context.Context, accountID, affiliateID int64, now time.Time) error {
	if accountID == affiliateID {
		return nil
	}
	_, err := s.db.ExecContext(ctx, "INSERT INTO referrals (account_id, affiliate_id, created_at) VALUES ($1, $2, $3) ON CONFLICT (account_id) DO NOTHING",
		accountID, affiliateID, s.ts(now))
	if isForeignKey(err) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("recording referral: %w", err)
	}
	return nil
}

// RecordPayout records what the operator paid an affiliate.
func (s *sqlStore) RecordPayout(ctx context.Context, affiliateID int64, amountCents int64, currency string, now time.Time) error {
	if amountCents <= 0 || currency == "" {
		return errors.New("recording payout: a positive amount and a currency are required")
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO affiliate_ledger (affiliate_id, kind, amount_cents, currency, created_at)
		VALUES ($1, $2, $3, $4, $5)`, affiliateID, ledgerPayout, amountCents, currency, s.ts(now))
	if isForeignKey(err) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("recording payout: %w", err)
	}
	return nil
}

// creditAffiliate credits the affiliate that referred p's account its
// share of the payment recorded as recordID, once (a credit per billing
// record). A payment of no amount credits nothing.
func (s *sqlStore) creditAffiliate(ctx context.Context, tx *sql.Tx, recordID int64, p Payment, now time.Time) error {
	share := p.AmountCents * int64(p.AffiliatePercent) / 100
	if share <= 0 {
		return nil
	}
	var affiliate int64
	err := tx.QueryRowContext(ctx, "SELECT affiliate_id FROM referrals WHERE account_id = $1", p.AccountID).Scan(&affiliate)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO affiliate_ledger (affiliate_id, billing_record_id, kind, amount_cents, currency, created_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (billing_record_id, kind) DO NOTHING`,
		affiliate, recordID, ledgerCredit, share, p.Currency, s.ts(now))
	return err
}

// reverseAffiliate takes back the credit a refunded payment gave, once.
func (s *sqlStore) reverseAffiliate(ctx context.Context, tx *sql.Tx, recordID int64, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO affiliate_ledger (affiliate_id, billing_record_id, kind, amount_cents, currency, created_at)
		SELECT affiliate_id, billing_record_id, $1, amount_cents, currency, $2 FROM affiliate_ledger
		WHERE billing_record_id = $3 AND kind = $4
		ON CONFLICT (billing_record_id, kind) DO NOTHING`, ledgerReversal, s.ts(now), recordID, ledgerCredit)
	return err
}
