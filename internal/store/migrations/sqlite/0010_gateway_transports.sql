-- Where a gateway also takes WireGuard over TLS (TCP port) and QUIC (UDP
-- port), 0 when it does not, and the pin (base64 SHA-256 of the public
-- key) of the certificate both present, as the gateway reports them:
-- clients on networks that block WireGuard's UDP connect through them.
ALTER TABLE gateways ADD COLUMN tls_port INTEGER NOT NULL DEFAULT 0;
ALTER TABLE gateways ADD COLUMN quic_port INTEGER NOT NULL DEFAULT 0;
ALTER TABLE gateways ADD COLUMN cert_pin TEXT NOT NULL DEFAULT '';
