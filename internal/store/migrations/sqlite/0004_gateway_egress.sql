-- The addresses a gateway's traffic leaves from (comma-separated), as it
-- reports them: the operator's own addresses, by which My IP and the DNS
-- leak test recognise a visitor or a resolver coming through a gateway
-- whose egress is not its endpoint.
ALTER TABLE gateways ADD COLUMN egress TEXT NOT NULL DEFAULT '';
