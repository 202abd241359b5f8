CREATE TABLE accounts (
	id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	code_hash BYTEA NOT NULL UNIQUE,
	email TEXT,
	plan TEXT NOT NULL,
	paid_until TIMESTAMPTZ,
	trial_until TIMESTAMPTZ,
	marketing_consent BOOLEAN NOT NULL DEFAULT FALSE,
	restricted BOOLEAN NOT NULL DEFAULT FALSE,
	created_at TIMESTAMPTZ NOT NULL
);

-- in_map: the device is in the peer map (its account is active).
-- peer_version: the peer-map version at which it last entered or changed.
CREATE TABLE devices (
	id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	public_key TEXT NOT NULL UNIQUE,
	addr_index BIGINT NOT NULL UNIQUE,
	in_map BOOLEAN NOT NULL DEFAULT FALSE,
	peer_version BIGINT NOT NULL DEFAULT 0,
	created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX devices_account ON devices (account_id);
CREATE INDEX devices_peer_version ON devices (peer_version);

CREATE TABLE sessions (
	token_hash BYTEA PRIMARY KEY,
	account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_account ON sessions (account_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE gateways (
	id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	location TEXT NOT NULL,
	endpoint TEXT NOT NULL,
	token_hash BYTEA NOT NULL UNIQUE,
	public_key TEXT NOT NULL DEFAULT '',
	builtin BOOLEAN NOT NULL DEFAULT FALSE,
	peers BIGINT NOT NULL DEFAULT 0,
	rx_bytes BIGINT NOT NULL DEFAULT 0,
	tx_bytes BIGINT NOT NULL DEFAULT 0,
	last_seen TIMESTAMPTZ,
	created_at TIMESTAMPTZ NOT NULL
);

-- One row. Every peer-map change locks it (SELECT ... FOR UPDATE), which
-- serializes them. history_floor: deltas are complete for any
-- since >= history_floor.
CREATE TABLE peer_version (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	version BIGINT NOT NULL,
	history_floor BIGINT NOT NULL
);
INSERT INTO peer_version (id, version, history_floor) VALUES (1, 0, 0);

-- Keys that left the peer map, kept for a bounded history so gateways can
-- apply deltas.
CREATE TABLE peer_tombstones (
	public_key TEXT PRIMARY KEY,
	version BIGINT NOT NULL,
	removed_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX peer_tombstones_version ON peer_tombstones (version);
CREATE INDEX peer_tombstones_removed_at ON peer_tombstones (removed_at);
