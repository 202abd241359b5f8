-- Vouchers: prepaid time sold for cash or by resellers. Only the code's
-- keyed hash is kept; redeemed_at is set once, atomically, and nothing
-- here names the account that redeemed it (its billing record does, as
-- any payment's). Times are UTC.
CREATE TABLE vouchers (
	id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	code_hash BYTEA NOT NULL UNIQUE,
	days INTEGER NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	redeemed_at TIMESTAMPTZ
);

-- Affiliates: an account that joined the affiliate program, with the
-- code of its referral link /r/CODE.
CREATE TABLE affiliates (
	account_id BIGINT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
	code TEXT NOT NULL UNIQUE,
	created_at TIMESTAMPTZ NOT NULL
);

-- Referrals: a referred account's link to its affiliate. account_id is
-- emptied when the referred account is erased (the affiliate's count of
-- sign-ups stays, the link to the person goes).
CREATE TABLE referrals (
	id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	account_id BIGINT UNIQUE REFERENCES accounts (id) ON DELETE SET NULL,
	affiliate_id BIGINT NOT NULL REFERENCES affiliates (account_id) ON DELETE CASCADE,
	created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX referrals_affiliate ON referrals (affiliate_id);

-- The affiliate ledger: a credit per referred payment, its reversal on
-- refund, and the operator's payouts. billing_record_id with kind makes
-- a credit (and its reversal) happen once.
CREATE TABLE affiliate_ledger (
	id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	affiliate_id BIGINT NOT NULL REFERENCES affiliates (account_id) ON DELETE CASCADE,
	billing_record_id BIGINT REFERENCES billing_records (id) ON DELETE SET NULL,
	kind TEXT NOT NULL,
	amount_cents BIGINT NOT NULL,
	currency TEXT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	UNIQUE (billing_record_id, kind)
);
CREATE INDEX affiliate_ledger_affiliate ON affiliate_ledger (affiliate_id);

-- reminded_until: the end of the paid time whose expiry reminder was
-- queued, so that each paid period gets one reminder.
ALTER TABLE accounts ADD COLUMN reminded_until TIMESTAMPTZ;
