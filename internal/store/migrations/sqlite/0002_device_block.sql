-- DNS blocking categories a device has chosen ("ads,trackers"), carried in
-- the peer map so that each gateway's resolver applies them to that peer.
ALTER TABLE devices ADD COLUMN block TEXT NOT NULL DEFAULT '';
