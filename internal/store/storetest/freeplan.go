package storetest

import (
	"maps"
	"testing"
	"time"

	"veil/internal/store"
)

// classes returns each peer's plan class.
func classes(pc *store.PeerChanges) map[string]string {
	out := map[string]string{}
	for _, p := range pc.Peers {
		out[p.PublicKey] = p.Plan
	}
	return out
}

// testFreePlan follows devices through expiry onto the free plan, an
// upgrade off it at the payment itself, a refund back, and the free plan
// being turned off and on.
func testFreePlan(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	holdTombstones(t, s)
	ctx := t.Context()
	now := base()
	s.SetFreePlan(store.FreePlan{Enabled: true, Devices: 2})
	paid := newAccount(t, s, now.Add(time.Hour))
	lapsed := newAccount(t, s, now.Add(-time.Hour))
	never := &store.Account{CodeHash: Random(t, 32), Plan: store.PlanFree}
	if _, err := s.CreateAccount(ctx, never); err != nil {
		t.Fatal(err)
	}
	p1 := newDevice(t, s, paid.ID)
	l1, l2, l3 := newDevice(t, s, lapsed.ID), newDevice(t, s, lapsed.ID), newDevice(t, s, lapsed.ID)
	n1 := newDevice(t, s, never.ID)
	sync := func(at time.Time, want int) {
		t.Helper()
		if n, err := s.SyncPeerActivity(ctx, at); err != nil || n != want {
			t.Fatalf("SyncPeerActivity(%v) = %d, %v; want %d", at.Sub(now), n, err, want)
		}
	}
	want := func(what string, pc *store.PeerChanges, peers map[string]string, removed ...string) {
		t.Helper()
		if got := classes(pc); !maps.Equal(got, peers) || !equalSets(pc.Removed, removed) {
			t.Errorf("%s: peers %v removed %v; want %v removed %v", what, got, pc.Removed, peers, removed)
		}
	}
	// Registered without time, a device enters on the free plan, up to
	// the free plan's devices.
	want("full map", peersSince(t, s, 0), map[string]string{
		p1.PublicKey: store.PlanPremium, l1.PublicKey: store.PlanFree, l2.PublicKey: store.PlanFree, n1.PublicKey: store.PlanFree,
	})
	sync(now, 0)

	// Expiry: the paid device falls back to the free plan, a change of
	// class and no removal, with no request from anyone.
	v := version(t, s)
	sync(now.Add(2*time.Hour), 1)
	want("delta at expiry", peersSince(t, s, v), map[string]string{p1.PublicKey: store.PlanFree})
	sync(now.Add(2*time.Hour), 0)

	// A payment lifts the cap at once: the next poll sees it.
	v = version(t, s)
	if ok, err := s.RecordPayment(ctx, store.Payment{AccountID: lapsed.ID, Processor: "testpay", Reference: "up-1",
		Product: "premium-30", Days: 30, AmountCents: 500, Currency: "EUR"}, now); err != nil || !ok {
		t.Fatalf("RecordPayment = %t, %v", ok, err)
	}
	want("delta after payment", peersSince(t, s, v), map[string]string{
		l1.PublicKey: store.PlanPremium, l2.PublicKey: store.PlanPremium, l3.PublicKey: store.PlanPremium,
	})
	sync(now.Add(2*time.Hour), 0)

	// A refund takes the time back: free again, the third device out.
	v = version(t, s)
	if ok, err := s.RefundPayment(ctx, "testpay", "up-1", now.Add(2*time.Hour)); err != nil || !ok {
		t.Fatalf("RefundPayment = %t, %v", ok, err)
	}
	want("delta after refund", peersSince(t, s, v), map[string]string{l1.PublicKey: store.PlanFree, l2.PublicKey: store.PlanFree}, l3.PublicKey)

	// The operator turns the free plan off: free devices leave.
	v = version(t, s)
	s.SetFreePlan(store.FreePlan{})
	sync(now.Add(2*time.Hour), 4)
	want("delta with the free plan off", peersSince(t, s, v), map[string]string{}, p1.PublicKey, l1.PublicKey, l2.PublicKey, n1.PublicKey)
	if got := keys(peersSince(t, s, 0).Peers); len(got) != 0 {
		t.Errorf("map with the free plan off = %v, want empty", got)
	}
	// A device registered now stays out, as before the free plan.
	newDevice(t, s, never.ID)
	if got := keys(peersSince(t, s, 0).Peers); len(got) != 0 {
		t.Errorf("map after a registration with the free plan off = %v, want empty", got)
	}
	// And on again: back as free devices.
	s.SetFreePlan(store.FreePlan{Enabled: true, Devices: 1})
	sync(now.Add(2*time.Hour), 3)
	want("map with the free plan on again", peersSince(t, s, 0), map[string]string{
		p1.PublicKey: store.PlanFree, l1.PublicKey: store.PlanFree, n1.PublicKey: store.PlanFree,
	})
}

// testFreePlanDevices checks that the oldest devices keep the free plan
// and that a deletion lets the next one in.
func testFreePlanDevices(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	holdTombstones(t, s)
	ctx := t.Context()
	now := base()
	s.SetFreePlan(store.FreePlan{Enabled: true, Devices: 1})
	a := newAccount(t, s, now.Add(time.Hour))
	d1, d2 := newDevice(t, s, a.ID), newDevice(t, s, a.ID)
	if n, err := s.SyncPeerActivity(ctx, now.Add(2*time.Hour)); err != nil || n != 2 {
		t.Fatalf("SyncPeerActivity at expiry = %d, %v; want 2 (one onto the free plan, one out)", n, err)
	}
	if got := classes(peersSince(t, s, 0)); !maps.Equal(got, map[string]string{d1.PublicKey: store.PlanFree}) {
		t.Errorf("map after expiry = %v; want the oldest device alone, free", got)
	}
	if err := s.DeleteDevice(ctx, a.ID, d1.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := s.SyncPeerActivity(ctx, now.Add(2*time.Hour)); err != nil || n != 1 {
		t.Fatalf("SyncPeerActivity after a deletion = %d, %v; want 1", n, err)
	}
	if got := classes(peersSince(t, s, 0)); !maps.Equal(got, map[string]string{d2.PublicKey: store.PlanFree}) {
		t.Errorf("map after deleting the free device = %v; want the next one, free", got)
	}
}

func equalSets(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}
