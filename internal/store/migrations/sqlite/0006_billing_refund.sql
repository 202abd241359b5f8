-- A refunded payment keeps its record (tax law counts refunds too), marked
-- with when it was refunded; the account loses the paid time it bought.
ALTER TABLE billing_records ADD COLUMN refunded_at INTEGER;
