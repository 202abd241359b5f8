package billing

import (
	"context"
	"fmt"
	"time"

	"veil/internal/store"
)

// RecorderStore is what recording payments needs of the store.
type RecorderStore interface {
	RecordPayment(ctx context.Context, p store.Payment, now time.Time) (bool, error)
	RefundPayment(ctx context.Context, processor, reference string, now time.Time) (bool, error)
	CreateVouchers(ctx context.Context, hashes [][]byte, days int, now time.Time) error
	RedeemVoucher(ctx context.Context, hash []byte, p store.Payment, now time.Time) (int, error)
}

// Recorder turns processors' events into the store's payments: each
// payment recorded once, extending the paid time and crediting the
// affiliate that referred the account, then a receipt.
type Recorder struct {
	Store RecorderStore
	// AffiliatePercent is the share of a referred account's payments
	// credited to its affiliate.
	AffiliatePercent int
	// Receipt queues the receipt of a payment just recorded for an
	// account (one that has an email; the function decides); nil: none.
	Receipt func(ctx context.Context, p store.Payment) error
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

func (r *Recorder) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Record stores a Paid event of processor for the account accountID (0:
// detached) and reports whether it was new. A failed receipt does not
// undo the payment; it is returned wrapped in ErrReceipt.
func (r *Recorder) Record(ctx context.Context, processor string, accountID int64, ev Event) (bool, error) {
	p := store.Payment{AccountID: accountID, Processor: processor, Reference: ev.Reference,
		Product: ev.Product, Days: ev.Days, AmountCents: ev.AmountCents, Currency: ev.Currency,
		Plan: ev.Plan, AffiliatePercent: r.AffiliatePercent}
	applied, err := r.Store.RecordPayment(ctx, p, r.now())
	if err != nil || !applied {
		return applied, err
	}
	return true, r.receipt(ctx, p)
}

// Refund takes back a payment; see store.RefundPayment.
func (r *Recorder) Refund(ctx context.Context, processor, reference string) (bool, error) {
	return r.Store.RefundPayment(ctx, processor, reference, r.now())
}

// ErrReceipt wraps a failure to queue a receipt after the payment was
// recorded.
var ErrReceipt = fmt.Errorf("queueing receipt")

func (r *Recorder) receipt(ctx context.Context, p store.Payment) error {
	if r.Receipt == nil || p.AccountID == 0 {
		return nil
	}
	if err := r.Receipt(ctx, p); err != nil {
		return fmt.Errorf("%w: %w", ErrReceipt, err)
	}
	return nil
}
