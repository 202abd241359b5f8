-- The periodic peer-activity check looks only at devices out of the map
-- and at accounts not paid up, instead of reading every device.
CREATE INDEX devices_out_of_map ON devices (account_id) WHERE NOT in_map;
CREATE INDEX accounts_paid_until ON accounts (paid_until);
-- Devices on the free plan, which the same check reads when their account
-- may have paid again.
CREATE INDEX devices_free ON devices (account_id) WHERE free;
