package storetest

import (
	"testing"
	"time"

	"veil/internal/store"
)

// testProxyCredential: an extension device's credential hash is kept,
// listed, carried by the peer map while the account is active, and
// leaves the map when the account expires.
func testProxyCredential(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	holdTombstones(t, s)
	ctx := t.Context()
	now := base()
	a := newAccount(t, s, now.Add(time.Hour))
	const hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	d, err := s.CreateDevice(ctx, store.NewDevice{AccountID: a.ID, Name: "browser", PublicKey: newKey(t), MaxDevices: 5,
		MinIndex: 1, MaxIndex: 100, ProxyHash: hash})
	if err != nil {
		t.Fatal(err)
	}
	plain := newDevice(t, s, a.ID)
	ds, err := s.Devices(ctx, a.ID)
	if err != nil || len(ds) != 2 || ds[0].ProxyHash != hash || ds[1].ProxyHash != "" {
		t.Fatalf("Devices = %+v, %v", ds, err)
	}
	pc := peersSince(t, s, 0)
	got := map[string]string{}
	for _, p := range pc.Peers {
		got[p.PublicKey] = p.ProxyHash
	}
	if len(got) != 2 || got[d.PublicKey] != hash || got[plain.PublicKey] != "" {
		t.Errorf("peer map proxy hashes = %v", got)
	}
	v := version(t, s)
	if _, err := s.SyncPeerActivity(ctx, now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	pc = peersSince(t, s, v)
	removed := map[string]bool{}
	for _, k := range pc.Removed {
		removed[k] = true
	}
	if !removed[d.PublicKey] {
		t.Errorf("after expiry the extension device is not removed: %+v", pc)
	}
}
