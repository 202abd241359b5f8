-- Times are unix microseconds, UTC. Booleans are 0/1.
CREATE TABLE accounts (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	code_hash BLOB NOT NULL UNIQUE,
	email TEXT,
	plan TEXT NOT NULL,
	paid_until INTEGER,
	trial_until INTEGER,
	marketing_consent INTEGER NOT NULL DEFAULT 0,
	restricted INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL
);

-- in_map: the device is in the peer map (its account is active).
-- peer_version: the peer-map version at which it last entered or changed.
CREATE TABLE devices (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	public_key TEXT NOT NULL UNIQUE,
	addr_index INTEGER NOT NULL UNIQUE,
	in_map INTEGER NOT NULL DEFAULT 0,
	peer_version INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL
);
CREATE INDEX devices_account ON devices (account_id);
CREATE INDEX devices_peer_version ON devices (peer_version);

CREATE TABLE sessions (
	token_hash BLOB PRIMARY KEY,
	account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_account ON sessions (account_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE gateways (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	name TEXT NOT NULL UNIQUE,
	location TEXT NOT NULL,
	endpoint TEXT NOT NULL,
	token_hash BLOB NOT NULL UNIQUE,
	public_key TEXT NOT NULL DEFAULT '',
	builtin INTEGER NOT NULL DEFAULT 0,
	peers INTEGER NOT NULL DEFAULT 0,
	rx_bytes INTEGER NOT NULL DEFAULT 0,
	tx_bytes INTEGER NOT NULL DEFAULT 0,
	last_seen INTEGER,
	created_at INTEGER NOT NULL
);

-- One row. Every peer-map change locks it, which serializes them.
-- history_floor: deltas are complete for any since >= history_floor.
CREATE TABLE peer_version (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	version INTEGER NOT NULL,
	history_floor INTEGER NOT NULL
);
INSERT INTO peer_version (id, version, history_floor) VALUES (1, 0, 0);

-- Keys that left the peer map, kept for a bounded history so gateways can
-- apply deltas.
CREATE TABLE peer_tombstones (
	public_key TEXT PRIMARY KEY,
	version INTEGER NOT NULL,
	removed_at INTEGER NOT NULL
);
CREATE INDEX peer_tombstones_version ON peer_tombstones (version);
CREATE INDEX peer_tombstones_removed_at ON peer_tombstones (removed_at);
