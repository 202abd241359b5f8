package apitypes

import "time"

// SignupChallenge answers GET /api/v1/accounts/challenge: a proof of
// work to solve before POST /api/v1/accounts. Find a decimal Nonce such
// that SHA-256(Challenge + ":" + Nonce) starts with Bits zero bits.
type SignupChallenge struct {
	Challenge string    `json:"challenge"`
	Bits      int       `json:"bits"`
	ExpiresAt time.Time `json:"expires_at"`
}

// SignupRequest is the body of POST /api/v1/accounts. Referral is an
// affiliate's referral code, optional.
type SignupRequest struct {
	Challenge string `json:"challenge"`
	Nonce     string `json:"nonce"`
	Referral  string `json:"referral,omitempty"`
	// Lang is the language the account's mail is to be in: a code of
	// the site's languages ("de") or the sign-up page's <html lang>;
	// anything else leaves it unset (English).
	Lang string `json:"lang,omitempty"`
}

// Plans answers GET /api/v1/plans.
type Plans struct {
	Products []Product `json:"products"`
	// TrialDays is the trial of a new account; 0: none.
	TrialDays int      `json:"trial_days"`
	FreePlan  FreePlan `json:"free_plan"`
}

// Product is a product on sale.
type Product struct {
	ID     string  `json:"id"`
	Name   string  `json:"name"`
	Days   int     `json:"days"`
	Plan   string  `json:"plan"`
	Prices []Price `json:"prices"`
}

// Price is an amount in one currency; Amount is the decimal ("5.00").
type Price struct {
	Amount      string `json:"amount"`
	AmountCents int64  `json:"amount_cents"`
	Currency    string `json:"currency"`
}

// FreePlan is the free plan's limits.
type FreePlan struct {
	Enabled bool `json:"enabled"`
	// Locations it may use; empty: all.
	Locations []string `json:"locations"`
	Devices   int      `json:"devices"`
	// BandwidthKbps caps each device in each direction; 0: no cap.
	BandwidthKbps int `json:"bandwidth_kbps"`
}

// VoucherRedeemRequest is the body of POST /api/v1/vouchers/redeem.
type VoucherRedeemRequest struct {
	Code string `json:"code"`
}

// VoucherRedeemed answers a redemption.
type VoucherRedeemed struct {
	Days      int       `json:"days"`
	PaidUntil time.Time `json:"paid_until"`
}

// VoucherCreateRequest is the body of POST /api/v1/admin/vouchers.
type VoucherCreateRequest struct {
	Days  int `json:"days"`
	Count int `json:"count"`
}

// VoucherBatch answers it: the codes, shown this once.
type VoucherBatch struct {
	Days  int      `json:"days"`
	Codes []string `json:"codes"`
}

// Affiliate is what an affiliate sees of its program: numbers, never who.
type Affiliate struct {
	Code string `json:"code"`
	// Link is the referral link, /r/CODE under the site.
	Link     string    `json:"link"`
	Signups  int       `json:"signups"`
	Payments int       `json:"payments"`
	Balances []Balance `json:"balances"`
}

// Balance is an amount owed in one currency.
type Balance struct {
	Amount      string `json:"amount"`
	AmountCents int64  `json:"amount_cents"`
	Currency    string `json:"currency"`
}

// AffiliatePayoutRequest is the body of
// POST /api/v1/admin/affiliates/{code}/payouts.
type AffiliatePayoutRequest struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}
