-- synced_version: the peer-map version the gateway last said it holds
-- (the since of its poll); synced_at: when it said so. A tombstone goes
-- once every gateway synced within the history age holds its version.
ALTER TABLE gateways ADD COLUMN synced_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE gateways ADD COLUMN synced_at TIMESTAMPTZ;

-- Refunds told before their payment, applied when the payment arrives.
-- refunded_at: when the processor told of the refund.
CREATE TABLE pending_refunds (
	processor TEXT NOT NULL,
	reference TEXT NOT NULL,
	refunded_at TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (processor, reference)
);
CREATE INDEX pending_refunds_refunded ON pending_refunds (refunded_at);

-- ANALYZE copies sample values of a column into pg_statistic, a catalog
-- that erasure does not rewrite: the columns that hold a person's data
-- keep no statistics, so no erased value lingers there.
ALTER TABLE accounts ALTER COLUMN email SET STATISTICS 0, ALTER COLUMN code_hash SET STATISTICS 0;
ALTER TABLE devices ALTER COLUMN public_key SET STATISTICS 0, ALTER COLUMN name SET STATISTICS 0;
ALTER TABLE sessions ALTER COLUMN token_hash SET STATISTICS 0;
ALTER TABLE support_tickets ALTER COLUMN email SET STATISTICS 0, ALTER COLUMN subject SET STATISTICS 0,
	ALTER COLUMN token_hash SET STATISTICS 0;
ALTER TABLE support_messages ALTER COLUMN body SET STATISTICS 0;
ALTER TABLE mail_outbox ALTER COLUMN to_addr SET STATISTICS 0, ALTER COLUMN subject SET STATISTICS 0,
	ALTER COLUMN body SET STATISTICS 0;
ALTER TABLE peer_tombstones ALTER COLUMN public_key SET STATISTICS 0;
