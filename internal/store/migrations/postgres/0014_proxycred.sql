-- A browser extension's device reaches the gateways' HTTPS proxy with a
-- credential shown to it once; only the credential's SHA-256 (hex) is
-- kept, and the peer map carries it to the gateways. Empty for a
-- WireGuard device.
ALTER TABLE devices ADD COLUMN proxy_hash TEXT NOT NULL DEFAULT '';

-- The port of the gateway's HTTPS proxy, as it reports it; 0: none.
ALTER TABLE gateways ADD COLUMN proxy_port INTEGER NOT NULL DEFAULT 0;
