-- synced_version: the peer-map version the gateway last said it holds
-- (the since of its poll); synced_at: when it said so. A tombstone goes
-- once every gateway synced within the history age holds its version.
-- Times are unix microseconds, UTC.
ALTER TABLE gateways ADD COLUMN synced_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE gateways ADD COLUMN synced_at INTEGER;

-- Refunds told before their payment, applied when the payment arrives.
-- refunded_at: when the processor told of the refund.
CREATE TABLE pending_refunds (
	processor TEXT NOT NULL,
	reference TEXT NOT NULL,
	refunded_at INTEGER NOT NULL,
	PRIMARY KEY (processor, reference)
);
CREATE INDEX pending_refunds_refunded ON pending_refunds (refunded_at);
