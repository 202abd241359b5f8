package controlplane_test

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"veil/internal/apitypes"
	"veil/internal/billing"
	"veil/internal/config"
	"veil/internal/controlplane"
	"veil/internal/store"
)

// plans returns each peer's plan class.
func plans(m apitypes.PeerMap) map[string]string {
	out := map[string]string{}
	for _, p := range m.Peers {
		out[p.PublicKey] = p.Plan
	}
	return out
}

// TestFreePlanPeerMap follows a device through expiry onto the free plan
// and back by a payment, at a gateway of a location the free plan
// includes and at one it does not.
func TestFreePlanPeerMap(t *testing.T) {
	free := config.FreePlan{Enabled: true, Locations: []string{"se"}, Devices: 1, BandwidthBps: 2_000_000}
	e := newEnv(t, nil, func(c *controlplane.Config) { c.FreePlan = free })
	e.store.SetFreePlan(store.FreePlan{Enabled: true, Devices: 1})
	inFree := e.addGateway(t, "sto")
	var g apitypes.GatewayCreated
	if st := e.call(t, "POST", "/api/v1/admin/gateways", e.admin,
		apitypes.GatewayCreateRequest{Name: "ams", Location: "nl-ams", Endpoint: "192.0.2.2:51820"}, &g); st != 201 {
		t.Fatalf("add gateway: %d", st)
	}
	outside := g.Token

	code := e.newAccount(t, 1)
	tok := e.login(t, code)
	key := newPub(t)
	if st := e.call(t, "POST", "/api/v1/devices", tok, apitypes.DeviceRequest{PublicKey: key}, nil); st != 201 {
		t.Fatalf("register: %d", st)
	}
	wantLimits := map[string]apitypes.PlanLimits{store.PlanFree: {BandwidthBps: 2_000_000}}
	fullIn, fullOut := pollPeers(t, e.url, inFree, 0, 0), pollPeers(t, e.url, outside, 0, 0)
	for _, m := range []apitypes.PeerMap{fullIn, fullOut} {
		if !maps.Equal(plans(m), map[string]string{key: store.PlanPremium}) || !maps.Equal(m.Plans, wantLimits) {
			t.Fatalf("full map while paid: %+v", m)
		}
	}

	// The paid time ends; no request is made: the periodic sync moves the
	// device onto the free plan, which the included location keeps (now
	// capped) and the other drops.
	e.now.Add(48 * time.Hour)
	in := pollPeers(t, e.url, inFree, fullIn.Version, 20*time.Second)
	if in.Full || !maps.Equal(plans(in), map[string]string{key: store.PlanFree}) || len(in.Removed) != 0 {
		t.Fatalf("delta at the included location after expiry: %+v", in)
	}
	out := pollPeers(t, e.url, outside, fullOut.Version, 20*time.Second)
	if out.Full || len(out.Peers) != 0 || !slices.Equal(out.Removed, []string{key}) || !maps.Equal(out.Plans, wantLimits) {
		t.Fatalf("delta at the excluded location after expiry: %+v", out)
	}
	if m := pollPeers(t, e.url, outside, 0, 0); len(m.Peers) != 0 {
		t.Fatalf("full map at the excluded location holds a free device: %+v", m)
	}

	// The free plan's device limit applies now.
	tok = e.login(t, code) // the hour-long session has ended too
	var er apitypes.Error
	if st := e.call(t, "POST", "/api/v1/devices", tok, apitypes.DeviceRequest{PublicKey: newPub(t)}, &er); st != http.StatusConflict ||
		!strings.Contains(er.Error, "free plan allows 1") {
		t.Fatalf("second device on the free plan: %d %+v", st, er)
	}
	var acc apitypes.Account
	if e.call(t, "GET", "/api/v1/account", tok, nil, &acc); acc.MaxDevices != 1 {
		t.Errorf("account's max devices on the free plan = %d, want 1", acc.MaxDevices)
	}

	// A payment lifts the cap with the next poll, and brings the device
	// back where the free plan does not go.
	if st, _ := e.notify(t, "testpay", testPaySecret, e.now.Now(), paymentBody(t, billing.GenericEvent{
		Type: billing.GenericPaid, Reference: "pi_up", Account: acc.PaymentReference,
		Product: "premium-30", Days: 30, AmountCents: 500, Currency: "EUR"})); st != 200 {
		t.Fatalf("payment notification: %d", st)
	}
	if m := pollPeers(t, e.url, inFree, in.Version, 0); !maps.Equal(plans(m), map[string]string{key: store.PlanPremium}) {
		t.Fatalf("delta at the included location after the payment: %+v", m)
	}
	if m := pollPeers(t, e.url, outside, out.Version, 0); !maps.Equal(plans(m), map[string]string{key: store.PlanPremium}) || len(m.Removed) != 0 {
		t.Fatalf("delta at the excluded location after the payment: %+v", m)
	}
}

// TestNoFreePlanHeader: without a free plan the header names no limits.
func TestNoFreePlanHeader(t *testing.T) {
	e := newEnv(t, nil)
	if m := pollPeers(t, e.url, e.addGateway(t, "gw"), 0, 0); m.Plans != nil {
		t.Errorf("plans without a free plan: %+v", m.Plans)
	}
}
