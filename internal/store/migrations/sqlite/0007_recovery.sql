-- One-time links for a lost access code, mailed to the account's email.
-- Only the token's keyed hash is stored; a link goes when used or
-- expired. Until then the old access code keeps working.
CREATE TABLE recovery_tokens (
	token_hash BLOB PRIMARY KEY,
	account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	expires_at INTEGER NOT NULL
);
CREATE INDEX recovery_tokens_account ON recovery_tokens (account_id);
CREATE INDEX recovery_tokens_expires ON recovery_tokens (expires_at);
