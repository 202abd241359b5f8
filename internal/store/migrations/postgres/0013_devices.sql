-- key_created_at: when the device's current WireGuard key was registered
-- (at creation, then at each rotation), so that its owner sees the key's
-- age. Not an activity record: it changes only when the owner's client
-- replaces the key.
ALTER TABLE devices ADD COLUMN key_created_at TIMESTAMPTZ;
UPDATE devices SET key_created_at = created_at;
ALTER TABLE devices ALTER COLUMN key_created_at SET NOT NULL;
