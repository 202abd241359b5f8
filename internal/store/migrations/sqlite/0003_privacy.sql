-- Privacy engine (docs/privacy.md). Times are unix microseconds, UTC.

-- legal_hold: an operator's hold suspends every retention deletion of the
-- account and its support tickets. last_used: the day (midnight UTC) of
-- the account's last login, nothing finer; with paid and trial time it
-- decides when an unused account is removed.
ALTER TABLE accounts ADD COLUMN legal_hold INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN last_used INTEGER;

-- Published privacy policies, kept forever. prose is the operator's text,
-- body the whole policy as published (prose and data inventory).
CREATE TABLE policy_versions (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	published_at INTEGER NOT NULL,
	prose TEXT NOT NULL,
	body TEXT NOT NULL
);

-- Mail waiting to be sent; a row is deleted once sent. kind is
-- transactional or marketing. account_id: the account it is for, if any;
-- erasing the account cancels its mail.
CREATE TABLE mail_outbox (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	kind TEXT NOT NULL,
	account_id INTEGER REFERENCES accounts (id) ON DELETE CASCADE,
	to_addr TEXT NOT NULL,
	subject TEXT NOT NULL,
	body TEXT NOT NULL,
	attempts INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at);
CREATE INDEX mail_outbox_account ON mail_outbox (account_id);

-- Support tickets, with or without an account. token_hash: the keyed hash
-- of the ticket's reading token (for tickets without an account).
CREATE TABLE support_tickets (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	account_id INTEGER REFERENCES accounts (id) ON DELETE CASCADE,
	email TEXT,
	token_hash BLOB NOT NULL UNIQUE,
	subject TEXT NOT NULL,
	status TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE INDEX support_tickets_account ON support_tickets (account_id);
CREATE INDEX support_tickets_updated ON support_tickets (updated_at);

CREATE TABLE support_messages (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	ticket_id INTEGER NOT NULL REFERENCES support_tickets (id) ON DELETE CASCADE,
	from_operator INTEGER NOT NULL DEFAULT 0,
	body TEXT NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE INDEX support_messages_ticket ON support_messages (ticket_id);
CREATE INDEX support_messages_created ON support_messages (created_at);

-- Aggregate client counts (promise P6): no account, device or address.
-- day is YYYY-MM-DD (UTC).
CREATE TABLE client_counters (
	day TEXT NOT NULL,
	os_version TEXT NOT NULL,
	app_version TEXT NOT NULL,
	count INTEGER NOT NULL,
	PRIMARY KEY (day, os_version, app_version)
);
