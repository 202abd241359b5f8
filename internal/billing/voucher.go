package billing

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"veil/internal/account"
	"veil/internal/store"
)

// Vouchers are prepaid time for cash by mail and resellers: the operator
// makes a batch (`veil admin voucher create --days 30 --count 100`),
// whose codes are printed once and stored only as keyed hashes; anyone
// redeems one for an account, once. A redemption is a payment of
// processor VoucherProcessor, amount 0 in currency XXX (ISO 4217's "no
// currency"), under a random reference that does not name the voucher.

// VoucherProcessor is the processor name of voucher payments.
const VoucherProcessor = "voucher"

// MaxVoucherBatch bounds one batch.
const MaxVoucherBatch = 10000

// ErrVoucher is the answer to a code that is malformed, unknown or spent:
// the three look alike.
var ErrVoucher = errors.New("voucher code not recognised or already used")

// CreateVouchers draws count codes worth days each, stores their hashes,
// and returns the codes, which exist nowhere else afterwards.
func (r *Recorder) CreateVouchers(ctx context.Context, h *account.Hasher, days, count int) ([]string, error) {
	if days < 1 || days > 3660 {
		return nil, errors.New("days: 1 to 3660")
	}
	if count < 1 || count > MaxVoucherBatch {
		return nil, fmt.Errorf("count: 1 to %d", MaxVoucherBatch)
	}
	for range 3 {
		codes := make([]string, count)
		hashes := make([][]byte, count)
		for i := range codes {
			c, err := account.NewVoucher()
			if err != nil {
				return nil, err
			}
			n, _ := account.NormalizeVoucher(c)
			codes[i], hashes[i] = c, h.Voucher(n)
		}
		err := r.Store.CreateVouchers(ctx, hashes, days, r.now())
		if errors.Is(err, store.ErrCodeCollision) {
			continue // 98 bits: not in this universe, but cheap to handle
		}
		if err != nil {
			return nil, err
		}
		return codes, nil
	}
	return nil, store.ErrCodeCollision
}

// Redeem spends a voucher for the account and returns the days it added.
// ErrVoucher for a malformed, unknown or spent code.
func (r *Recorder) Redeem(ctx context.Context, h *account.Hasher, accountID int64, code string) (int, error) {
	n, err := account.NormalizeVoucher(code)
	if err != nil {
		return 0, ErrVoucher
	}
	var ref [12]byte
	if _, err := rand.Read(ref[:]); err != nil {
		return 0, err
	}
	p := store.Payment{AccountID: accountID, Processor: VoucherProcessor, Reference: "v-" + hex.EncodeToString(ref[:]),
		Product: "voucher", Currency: "XXX", AffiliatePercent: r.AffiliatePercent}
	days, err := r.Store.RedeemVoucher(ctx, h.Voucher(n), p, r.now())
	if errors.Is(err, store.ErrVoucherInvalid) {
		return 0, ErrVoucher
	}
	if err != nil {
		return 0, err
	}
	p.Days = days
	return days, r.receipt(ctx, p)
}
