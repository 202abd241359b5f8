-- Vouchers: prepaid time sold for cash or by resellers. Only the code's
-- keyed hash is kept; redeemed_at is set once, atomically, and nothing
-- here names the account that redeemed it (its billing record does, as
-- any payment's). Times are unix microseconds, UTC.
CREATE TABLE vouchers (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	code_hash BLOB NOT NULL UNIQUE,
	days INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	redeemed_at INTEGER
);

-- Affiliates: an account that joined the affiliate program, with the
-- code of its referral link /r/CODE.
CREATE TABLE affiliates (
	account_id INTEGER PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
	code TEXT NOT NULL UNIQUE,
	created_at INTEGER NOT NULL
);

-- Referrals: a referred account's link to its affiliate. account_id is
-- emptied when the referred account is erased (the affiliate's count of
-- sign-ups stays, the link to the person goes).
CREATE TABLE referrals (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	account_id INTEGER UNIQUE REFERENCES accounts (id) ON DELETE SET NULL,
	affiliate_id INTEGER NOT NULL REFERENCES affiliates (account_id) ON DELETE CASCADE,
	created_at INTEGER NOT NULL
);
CREATE INDEX referrals_affiliate ON referrals (affiliate_id);

-- The affiliate ledger: a credit per referred payment, its reversal on
-- refund, and the operator's payouts. billing_record_id with kind makes
-- a credit (and its reversal) happen once.
CREATE TABLE affiliate_ledger (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	affiliate_id INTEGER NOT NULL REFERENCES affiliates (account_id) ON DELETE CASCADE,
	billing_record_id INTEGER REFERENCES billing_records (id) ON DELETE SET NULL,
	kind TEXT NOT NULL,
	amount_cents INTEGER NOT NULL,
	currency TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	UNIQUE (billing_record_id, kind)
);
CREATE INDEX affiliate_ledger_affiliate ON affiliate_ledger (affiliate_id);

-- reminded_until: the end of the paid time whose expiry reminder was
-- queued, so that each paid period gets one reminder.
ALTER TABLE accounts ADD COLUMN reminded_until INTEGER;
