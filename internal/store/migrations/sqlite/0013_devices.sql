-- key_created_at: when the device's current WireGuard key was registered
-- (at creation, then at each rotation), so that its owner sees the key's
-- age. Unix microseconds, UTC. Not an activity record: it changes only
-- when the owner's client replaces the key.
ALTER TABLE devices ADD COLUMN key_created_at INTEGER NOT NULL DEFAULT 0;
UPDATE devices SET key_created_at = created_at;
