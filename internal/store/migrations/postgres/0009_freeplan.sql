-- free: the device is in the peer map on the free plan (its account has
-- no paid or trial time and the operator offers a free plan), so gateways
-- cap it and locations outside the free plan leave it out.
ALTER TABLE devices ADD COLUMN free BOOLEAN NOT NULL DEFAULT FALSE;
