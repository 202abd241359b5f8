-- Billing records (promise P7): one per payment a processor reported, kept
-- as tax law requires. account_id: the account it paid for, detached
-- (NULL) when the account is erased; the record itself stays for its tax
-- period. processor and reference name the payment at the processor and
-- make a repeated notification a no-op. No card data, ever. Times are UTC.
CREATE TABLE billing_records (
	id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	account_id BIGINT REFERENCES accounts (id) ON DELETE SET NULL,
	processor TEXT NOT NULL,
	reference TEXT NOT NULL,
	product TEXT NOT NULL,
	days INTEGER NOT NULL,
	amount_cents BIGINT NOT NULL,
	currency TEXT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	UNIQUE (processor, reference)
);
CREATE INDEX billing_records_account ON billing_records (account_id);
CREATE INDEX billing_records_created ON billing_records (created_at);
