// Package storetest is the conformance suite for store.Store: every
// implementation (SQLite and PostgreSQL) must pass the same tests.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"veil/internal/store"
)

// waitTimeout bounds every wait for a notice; reaching it fails the test.
const waitTimeout = 20 * time.Second

// Run runs the suite. open returns a Store on a database that belongs to
// the test t, fresh on the first call for t; a second call with the same t
// must return another Store on the same database (as a second process
// would open it). open closes what it opens in t's Cleanup.
func Run(t *testing.T, open func(t testing.TB) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open func(testing.TB) store.Store)
	}{
		{"Accounts", testAccounts},
		{"AccountUpdate", testAccountUpdate},
		{"DeviceLimit", testDeviceLimit},
		{"AddressReuse", testAddressReuse},
		{"DuplicateKey", testDuplicateKey},
		{"Rekey", testRekey},
		{"DeviceBlock", testDeviceBlock},
		{"RenameDevice", testRenameDevice},
		{"ProxyCredential", testProxyCredential},
		{"Sessions", testSessions},
		{"SessionLimit", testSessionLimit},
		{"RecoveryTokens", testRecoveryTokens},
		{"Gateways", testGateways},
		{"PeerMap", testPeerMap},
		{"FreePlan", testFreePlan},
		{"FreePlanDevices", testFreePlanDevices},
		{"Tombstones", testTombstones},
		{"GatewaySync", testGatewaySync},
		{"Activity", testActivity},
		{"PlanChange", testPlanChange},
		{"Watch", testWatch},
		{"WatchOtherStore", testWatchOtherStore},
		{"ConcurrentLimit", testConcurrentLimit},
		{"ConcurrentAddresses", testConcurrentAddresses},
		{"ConcurrentSync", testConcurrentSync},
		{"ConcurrentDeltas", testConcurrentDeltas},
		{"DeleteAccount", testDeleteAccount},
		{"Schema", testSchema},
		{"Privacy", testPrivacy},
		{"Billing", testBilling},
		{"EarlyRefund", testEarlyRefund},
		{"Vouchers", testVouchers},
		{"Affiliates", testAffiliates},
		{"Reminders", testReminders},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
	}
}

// Random returns n random bytes.
func Random(tb testing.TB, n int) []byte {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return b
}

// newKey returns a random WireGuard-shaped public key.
func newKey(tb testing.TB) string {
	tb.Helper()
	return base64.StdEncoding.EncodeToString(Random(tb, 32))
}

// base is the suite's "now": fixed within a test, at the stored precision.
func base() time.Time { return time.Now().UTC().Truncate(time.Second) }

// newAccount creates an account paid until paidUntil (zero: never paid).
func newAccount(tb testing.TB, s store.Store, paidUntil time.Time) *store.Account {
	tb.Helper()
	a := &store.Account{CodeHash: Random(tb, 32), Plan: store.PlanPremium, PaidUntil: paidUntil}
	if _, err := s.CreateAccount(tb.Context(), a); err != nil {
		tb.Fatalf("CreateAccount: %v", err)
	}
	return a
}

// newDevice registers a device with index pool [1, 1<<20] and a limit of 5.
func newDevice(tb testing.TB, s store.Store, accountID int64) *store.Device {
	tb.Helper()
	d, err := s.CreateDevice(tb.Context(), store.NewDevice{
		AccountID: accountID, Name: "dev", PublicKey: newKey(tb), MaxDevices: 5, MinIndex: 1, MaxIndex: 1 << 20,
	})
	if err != nil {
		tb.Fatalf("CreateDevice: %v", err)
	}
	return d
}

// holdTombstones registers a gateway that has synced nothing yet (version
// 0), so the store keeps every tombstone within the kept history: the
// deltas the tests look at.
func holdTombstones(tb testing.TB, s store.Store) *store.Gateway {
	tb.Helper()
	g := &store.Gateway{Name: fmt.Sprintf("hold-%x", Random(tb, 4)), Location: "se-sto", Endpoint: "192.0.2.1:51820", TokenHash: Random(tb, 32)}
	if _, err := s.CreateGateway(tb.Context(), g); err != nil {
		tb.Fatalf("CreateGateway: %v", err)
	}
	if err := s.GatewaySynced(tb.Context(), g.ID, 0); err != nil {
		tb.Fatalf("GatewaySynced: %v", err)
	}
	return g
}

func version(tb testing.TB, s store.Store) int64 {
	tb.Helper()
	v, err := s.PeerVersion(tb.Context())
	if err != nil {
		tb.Fatalf("PeerVersion: %v", err)
	}
	return v
}

func peersSince(tb testing.TB, s store.Store, since int64) *store.PeerChanges {
	tb.Helper()
	pc, err := s.PeersSince(tb.Context(), since)
	if err != nil {
		tb.Fatalf("PeersSince(%d): %v", since, err)
	}
	// StreamPeers must hand out the same, in the same order, with the
	// version and fullness known from the first peer on.
	var streamed []store.Peer
	st, err := s.StreamPeers(tb.Context(), since, func(h *store.PeerChanges, p store.Peer) error {
		if h.Version != pc.Version || h.Full != pc.Full {
			tb.Errorf("StreamPeers(%d) header = version %d full %v; PeersSince says %d %v", since, h.Version, h.Full, pc.Version, pc.Full)
		}
		streamed = append(streamed, p)
		return nil
	})
	if err != nil {
		tb.Fatalf("StreamPeers(%d): %v", since, err)
	}
	if len(streamed) != len(pc.Peers) || !slices.EqualFunc(streamed, pc.Peers, func(a, b store.Peer) bool {
		return a.PublicKey == b.PublicKey && a.AddrIndex == b.AddrIndex && a.Plan == b.Plan && slices.Equal(a.Block, b.Block)
	}) || !slices.Equal(st.Removed, pc.Removed) || len(st.Peers) != 0 {
		tb.Errorf("StreamPeers(%d) = %d peers, removed %v; PeersSince = %d peers, removed %v", since, len(streamed), st.Removed, len(pc.Peers), pc.Removed)
	}
	return pc
}

func keys(ps []store.Peer) []string {
	var ks []string
	for _, p := range ps {
		ks = append(ks, p.PublicKey)
	}
	slices.Sort(ks)
	return ks
}

func sorted(ks ...string) []string {
	ks = slices.Clone(ks)
	slices.Sort(ks)
	return ks
}

func wantErr(tb testing.TB, what string, got, want error) {
	tb.Helper()
	if !errors.Is(got, want) {
		tb.Fatalf("%s: error %v, want %v", what, got, want)
	}
}

func testAccounts(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	ctx := t.Context()
	now := base()
	a := &store.Account{
		CodeHash: Random(t, 32), Email: "a@example.org", Plan: store.PlanPremium,
		PaidUntil: now.Add(time.Hour), TrialUntil: now.Add(time.Minute), MarketingConsent: true, Restricted: true,
		CreatedAt: now.Add(-time.Hour).In(time.FixedZone("x", 3600)), Lang: "ru",
	}
	id, err := s.CreateAccount(ctx, a)
	if err != nil || id == 0 || a.ID != id {
		t.Fatalf("CreateAccount = %d, %v (a.ID %d)", id, err, a.ID)
	}
	b := newAccount(t, s, time.Time{})
	if b.CreatedAt.IsZero() {
		t.Error("CreateAccount left CreatedAt zero")
	}

	byID, err := s.AccountByID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	byHash, err := s.AccountByCodeHash(ctx, a.CodeHash)
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range []*store.Account{byID, byHash} {
		if got.ID != id || string(got.CodeHash) != string(a.CodeHash) || got.Email != a.Email || got.Plan != a.Plan ||
			!got.PaidUntil.Equal(a.PaidUntil) || !got.TrialUntil.Equal(a.TrialUntil) || !got.CreatedAt.Equal(a.CreatedAt) ||
			!got.MarketingConsent || !got.Restricted || got.Lang != "ru" {
			t.Errorf("read %+v, want %+v", got, a)
		}
		if got.PaidUntil.Location() != time.UTC || got.CreatedAt.Location() != time.UTC {
			t.Errorf("times not in UTC: %v %v", got.PaidUntil, got.CreatedAt)
		}
	}
	got, err := s.AccountByID(ctx, b.ID)
	if err != nil || got.Email != "" || !got.PaidUntil.IsZero() || !got.TrialUntil.IsZero() || got.MarketingConsent || got.Lang != "" {
		t.Errorf("account without optional fields read as %+v, %v", got, err)
	}

	_, err = s.CreateAccount(ctx, &store.Account{CodeHash: a.CodeHash, Plan: store.PlanFree})
	wantErr(t, "CreateAccount with a taken hash", err, store.ErrCodeCollision)
	// The database itself keeps lang to the site's languages.
	if _, err := s.CreateAccount(ctx, &store.Account{CodeHash: Random(t, 32), Plan: store.PlanFree, Lang: "pt-BR"}); err == nil {
		t.Error("CreateAccount stored the language pt-BR, which the site does not have")
	}
	_, err = s.AccountByID(ctx, id+1000)
	wantErr(t, "AccountByID unknown", err, store.ErrNotFound)
	_, err = s.AccountByCodeHash(ctx, Random(t, 32))
	wantErr(t, "AccountByCodeHash unknown", err, store.ErrNotFound)
	if n, err := s.CountAccounts(ctx); err != nil || n != 2 {
		t.Errorf("CountAccounts = %d, %v; want 2", n, err)
	}
	if err := s.DeleteAccount(ctx, id); err != nil {
		t.Fatal(err)
	}
	_, err = s.AccountByID(ctx, id)
	wantErr(t, "AccountByID after delete", err, store.ErrNotFound)
	wantErr(t, "DeleteAccount twice", s.DeleteAccount(ctx, id), store.ErrNotFound)
	if n, err := s.CountAccounts(ctx); err != nil || n != 1 {
		t.Errorf("CountAccounts = %d, %v; want 1", n, err)
	}
}

func testAccountUpdate(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	ctx := t.Context()
	now := base()
	ptr := func(v string) *string { return &v }
	tm := func(v time.Time) *time.Time { return &v }
	yes, no := true, false
	other := newAccount(t, s, time.Time{})
	newHash := Random(t, 32)
	tests := []struct {
		name  string
		u     store.AccountUpdate
		check func(a *store.Account) bool
		err   error
	}{
		{"email", store.AccountUpdate{Email: ptr("b@example.org")}, func(a *store.Account) bool { return a.Email == "b@example.org" }, nil},
		{"clear email", store.AccountUpdate{Email: ptr("")}, func(a *store.Account) bool { return a.Email == "" }, nil},
		{"plan", store.AccountUpdate{Plan: ptr(store.PlanFree)}, func(a *store.Account) bool { return a.Plan == store.PlanFree }, nil},
		{"paid", store.AccountUpdate{PaidUntil: tm(now.Add(48 * time.Hour))}, func(a *store.Account) bool { return a.PaidUntil.Equal(now.Add(48 * time.Hour)) }, nil},
		{"clear paid", store.AccountUpdate{PaidUntil: tm(time.Time{})}, func(a *store.Account) bool { return a.PaidUntil.IsZero() }, nil},
		{"trial", store.AccountUpdate{TrialUntil: tm(now.Add(time.Hour))}, func(a *store.Account) bool { return a.TrialUntil.Equal(now.Add(time.Hour)) }, nil},
		{"consent", store.AccountUpdate{MarketingConsent: &yes}, func(a *store.Account) bool { return a.MarketingConsent }, nil},
		{"withdraw consent", store.AccountUpdate{MarketingConsent: &no}, func(a *store.Account) bool { return !a.MarketingConsent }, nil},
		{"restrict", store.AccountUpdate{Restricted: &yes}, func(a *store.Account) bool { return a.Restricted }, nil},
		{"code hash", store.AccountUpdate{CodeHash: newHash}, func(a *store.Account) bool { return string(a.CodeHash) == string(newHash) }, nil},
		{"taken code hash", store.AccountUpdate{CodeHash: other.CodeHash}, func(a *store.Account) bool { return string(a.CodeHash) == string(newHash) }, store.ErrCodeCollision},
		{"lang", store.AccountUpdate{Lang: ptr("zh")}, func(a *store.Account) bool { return a.Lang == "zh" }, nil},
		{"change lang", store.AccountUpdate{Lang: ptr("de")}, func(a *store.Account) bool { return a.Lang == "de" && a.Restricted }, nil},
		{"nothing", store.AccountUpdate{}, func(a *store.Account) bool { return a.Restricted && a.Lang == "de" }, nil},
		{"clear lang", store.AccountUpdate{Lang: ptr("")}, func(a *store.Account) bool { return a.Lang == "" }, nil},
	}
	a := newAccount(t, s, now.Add(time.Hour))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.UpdateAccount(ctx, a.ID, tt.u)
			if tt.err != nil {
				wantErr(t, "UpdateAccount", err, tt.err)
			} else if err != nil {
				t.Fatalf("UpdateAccount: %v", err)
			}
			got, err := s.AccountByID(ctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(got) {
				t.Errorf("after update: %+v", got)
			}
		})
	}
	wantErr(t, "UpdateAccount unknown", s.UpdateAccount(ctx, a.ID+1000, store.AccountUpdate{Email: ptr("x@example.org")}), store.ErrNotFound)
	wantErr(t, "UpdateAccount unknown, plan", s.UpdateAccount(ctx, a.ID+1000, store.AccountUpdate{Plan: ptr(store.PlanFree)}), store.ErrNotFound)
	wantErr(t, "UpdateAccount unknown, empty", s.UpdateAccount(ctx, a.ID+1000, store.AccountUpdate{}), store.ErrNotFound)
	if err := s.UpdateAccount(ctx, a.ID, store.AccountUpdate{Lang: ptr("klingon")}); err == nil {
		t.Error("UpdateAccount stored a language the site does not have")
	}
	if got, err := s.AccountByID(ctx, other.ID); err != nil || got.Email != "" || got.Restricted || got.Lang != "" {
		t.Errorf("another account changed: %+v, %v", got, err)
	}
}

func testDeviceLimit(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	ctx := t.Context()
	a := newAccount(t, s, base().Add(time.Hour))
	nd := func(max int) store.NewDevice {
		return store.NewDevice{AccountID: a.ID, Name: "laptop", PublicKey: newKey(t), MaxDevices: max, MinIndex: 1, MaxIndex: 100}
	}
	var ids []int64
	for range 3 {
		d, err := s.CreateDevice(ctx, nd(3))
		if err != nil {
			t.Fatalf("CreateDevice: %v", err)
		}
		if d.ID == 0 || d.AccountID != a.ID || d.Name != "laptop" || d.CreatedAt.IsZero() {
			t.Errorf("CreateDevice returned %+v", d)
		}
		ids = append(ids, d.ID)
	}
	_, err := s.CreateDevice(ctx, nd(3))
	wantErr(t, "fourth device", err, store.ErrDeviceLimit)
	if _, err := s.CreateDevice(ctx, nd(4)); err != nil {
		t.Errorf("fourth device under a limit of 4: %v", err)
	}
	_, err = s.CreateDevice(ctx, store.NewDevice{AccountID: a.ID + 1000, PublicKey: newKey(t), MaxDevices: 5, MinIndex: 1, MaxIndex: 100})
	wantErr(t, "device of unknown account", err, store.ErrNotFound)

	ds, err := s.Devices(ctx, a.ID)
	if err != nil || len(ds) != 4 {
		t.Fatalf("Devices = %d, %v; want 4", len(ds), err)
	}
	for i, id := range ids {
		if ds[i].ID != id {
			t.Errorf("Devices not in id order: %+v", ds)
		}
	}
	if ds, err := s.Devices(ctx, a.ID+1000); err != nil || len(ds) != 0 {
		t.Errorf("Devices of unknown account = %v, %v", ds, err)
	}
}

func testAddressReuse(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	ctx := t.Context()
	a := newAccount(t, s, base().Add(time.Hour))
	b := newAccount(t, s, base().Add(time.Hour))
	create := func(acc int64) (*store.Device, error) {
		return s.CreateDevice(ctx, store.NewDevice{AccountID: acc, PublicKey: newKey(t), MaxDevices: 10, MinIndex: 10, MaxIndex: 13})
	}
	var ds []*store.Device
	for i := range 4 {
		d, err := create([]int64{a.ID, b.ID}[i%2])
		if err != nil {
			t.Fatal(err)
		}
		if d.AddrIndex != int64(10+i) {
			t.Errorf("device %d got index %d, want %d", i, d.AddrIndex, 10+i)
		}
		ds = append(ds, d)
	}
	_, err := create(a.ID)
	wantErr(t, "full pool", err, store.ErrPoolExhausted)

	for _, del := range []int{2, 0} { // free 12, then 10
		d := ds[del]
		if err := s.DeleteDevice(ctx, d.AccountID, d.ID); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []int64{10, 12} {
		d, err := create(b.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.AddrIndex != want {
			t.Errorf("reused index %d, want %d (lowest free, once the top is taken)", d.AddrIndex, want)
		}
	}
	// Below the top, a new device goes after the highest held, not into
	// the gap a removed one left.
	wide := func() (*store.Device, error) {
		return s.CreateDevice(ctx, store.NewDevice{AccountID: b.ID, PublicKey: newKey(t), MaxDevices: 10, MinIndex: 10, MaxIndex: 20})
	}
	if err := s.DeleteDevice(ctx, ds[1].AccountID, ds[1].ID); err != nil { // frees 11
		t.Fatal(err)
	}
	if d, err := wide(); err != nil || d.AddrIndex != 14 {
		t.Errorf("with room above, got index %v (%v), want 14", d, err)
	}
	wantErr(t, "DeleteDevice of another account", s.DeleteDevice(ctx, b.ID, ds[1].ID+1000), store.ErrNotFound)
	wantErr(t, "DeleteDevice with the wrong account", s.DeleteDevice(ctx, a.ID, ds[1].ID), store.ErrNotFound)
	_, err = s.CreateDevice(ctx, store.NewDevice{AccountID: a.ID, PublicKey: newKey(t), MaxDevices: 10, MinIndex: 5, MaxIndex: 4})
	wantErr(t, "empty pool", err, store.ErrPoolExhausted)
}

func testDuplicateKey(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	ctx := t.Context()
	a := newAccount(t, s, base().Add(time.Hour))
	b := newAccount(t, s, base().Add(time.Hour))
	d := newDevice(t, s, a.ID)
	for _, acc := range []int64{a.ID, b.ID} {
		_, err := s.CreateDevice(ctx, store.NewDevice{AccountID: acc, PublicKey: d.PublicKey, MaxDevices: 5, MinIndex: 1, MaxIndex: 100})
		wantErr(t, "CreateDevice with a taken key", err, store.ErrDuplicateKey)
	}
	e := newDevice(t, s, b.ID)
	_, err := s.RekeyDevice(ctx, b.ID, e.ID, d.PublicKey)
	wantErr(t, "RekeyDevice to a taken key", err, store.ErrDuplicateKey)
	if _, err := s.CreateDevice(ctx, store.NewDevice{AccountID: a.ID, PublicKey: "", MaxDevices: 5, MinIndex: 1, MaxIndex: 100}); err == nil {
		t.Error("CreateDevice accepted an empty key")
	}
	if ds, _ := s.Devices(ctx, a.ID); len(ds) != 1 {
		t.Errorf("account a has %d devices, want 1", len(ds))
	}
}

func testRekey(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	holdTombstones(t, s)
	ctx := t.Context()
	a := newAccount(t, s, base().Add(time.Hour))
	b := newAccount(t, s, base().Add(time.Hour))
	d := newDevice(t, s, a.ID)
	v := version(t, s)
	key := newKey(t)
	got, err := s.RekeyDevice(ctx, a.ID, d.ID, key)
	if err != nil {
		t.Fatal(err)
	}
	if got.PublicKey != key || got.AddrIndex != d.AddrIndex || got.ID != d.ID {
		t.Errorf("RekeyDevice = %+v, want key changed, same index as %+v", got, d)
	}
	pc := peersSince(t, s, v)
	if pc.Full || pc.Version != v+1 || !slices.Equal(keys(pc.Peers), []string{key}) || !slices.Equal(pc.Removed, []string{d.PublicKey}) {
		t.Errorf("delta after rekey = %+v", pc)
	}
	if pc.Peers[0].AddrIndex != d.AddrIndex {
		t.Errorf("rekeyed peer index %d, want %d", pc.Peers[0].AddrIndex, d.AddrIndex)
	}
	if !d.KeyCreatedAt.Equal(d.CreatedAt) {
		t.Errorf("new device: key created %v, device created %v; want equal", d.KeyCreatedAt, d.CreatedAt)
	}
	if got.KeyCreatedAt.Before(d.KeyCreatedAt) || !got.CreatedAt.Equal(d.CreatedAt) {
		t.Errorf("after rekey: key created %v (was %v), device created %v (was %v)", got.KeyCreatedAt, d.KeyCreatedAt, got.CreatedAt, d.CreatedAt)
	}
	if ds, err := s.Devices(ctx, a.ID); err != nil || len(ds) != 1 || !ds[0].KeyCreatedAt.Equal(got.KeyCreatedAt) {
		t.Errorf("Devices after rekey = %+v, %v; want key created %v", ds, err, got.KeyCreatedAt)
	}
	if _, err := s.RekeyDevice(ctx, a.ID, d.ID, key); err != nil || version(t, s) != v+1 {
		t.Errorf("rekey to the same key: %v, version %d (want unchanged %d)", err, version(t, s), v+1)
	}
	_, err = s.RekeyDevice(ctx, b.ID, d.ID, newKey(t))
	wantErr(t, "rekey with the wrong account", err, store.ErrNotFound)
	_, err = s.RekeyDevice(ctx, a.ID, d.ID+1000, newKey(t))
	wantErr(t, "rekey unknown device", err, store.ErrNotFound)
	if _, err := s.RekeyDevice(ctx, a.ID, d.ID, ""); err == nil {
		t.Error("rekey to an empty key accepted")
	}
	// The old key is free again.
	if _, err := s.CreateDevice(ctx, store.NewDevice{AccountID: b.ID, PublicKey: d.PublicKey, MaxDevices: 5, MinIndex: 1, MaxIndex: 100}); err != nil {
		t.Errorf("registering the old key: %v", err)
	}
}

func testRenameDevice(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	ctx := t.Context()
	a := newAccount(t, s, base().Add(time.Hour))
	b := newAccount(t, s, base().Add(time.Hour))
	d := newDevice(t, s, a.ID)
	other := newDevice(t, s, a.ID)
	v := version(t, s)
	got, err := s.RenameDevice(ctx, a.ID, d.ID, "phone")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "phone" || got.PublicKey != d.PublicKey || got.AddrIndex != d.AddrIndex {
		t.Errorf("RenameDevice = %+v, want only the name changed from %+v", got, d)
	}
	if version(t, s) != v {
		t.Errorf("rename moved the peer map from version %d to %d", v, version(t, s))
	}
	ds, err := s.Devices(ctx, a.ID)
	if err != nil || len(ds) != 2 || ds[0].Name != "phone" || ds[1].Name != other.Name {
		t.Errorf("Devices after rename = %+v, %v", ds, err)
	}
	_, err = s.RenameDevice(ctx, b.ID, d.ID, "stolen")
	wantErr(t, "rename with the wrong account", err, store.ErrNotFound)
	_, err = s.RenameDevice(ctx, a.ID, d.ID+1000, "x")
	wantErr(t, "rename unknown device", err, store.ErrNotFound)
	if _, err := s.RenameDevice(ctx, a.ID, d.ID, ""); err == nil {
		t.Error("rename to an empty name accepted")
	}
	if ds, _ := s.Devices(ctx, a.ID); ds[0].Name != "phone" {
		t.Errorf("a refused rename changed the name to %q", ds[0].Name)
	}
}

func testDeviceBlock(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	holdTombstones(t, s)
	ctx := t.Context()
	a := newAccount(t, s, base().Add(time.Hour))
	d, err := s.CreateDevice(ctx, store.NewDevice{AccountID: a.ID, PublicKey: newKey(t), MaxDevices: 5,
		MinIndex: 2, MaxIndex: 100, Block: []string{"trackers", "ads", "ads"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Block, []string{"ads", "trackers"}) {
		t.Errorf("created with block %q, want [ads trackers]", d.Block)
	}
	pc := peersSince(t, s, 0)
	if len(pc.Peers) != 1 || !slices.Equal(pc.Peers[0].Block, []string{"ads", "trackers"}) {
		t.Errorf("peer map block = %+v", pc.Peers)
	}
	v := version(t, s)
	got, err := s.SetDeviceBlock(ctx, a.ID, d.ID, []string{"malware"})
	if err != nil || !slices.Equal(got.Block, []string{"malware"}) {
		t.Fatalf("SetDeviceBlock = %+v, %v", got, err)
	}
	pc = peersSince(t, s, v)
	if pc.Full || len(pc.Peers) != 1 || !slices.Equal(pc.Peers[0].Block, []string{"malware"}) || len(pc.Removed) != 0 {
		t.Errorf("delta after a block change = %+v", pc)
	}
	if _, err := s.SetDeviceBlock(ctx, a.ID, d.ID, []string{"malware"}); err != nil || version(t, s) != v+1 {
		t.Errorf("same block again: %v, version %d (want unchanged %d)", err, version(t, s), v+1)
	}
	devs, err := s.Devices(ctx, a.ID)
	if err != nil || len(devs) != 1 || !slices.Equal(devs[0].Block, []string{"malware"}) {
		t.Errorf("Devices = %+v, %v", devs, err)
	}
	if got, err := s.SetDeviceBlock(ctx, a.ID, d.ID, nil); err != nil || len(got.Block) != 0 {
		t.Errorf("clearing block: %+v, %v", got, err)
	}
	b := newAccount(t, s, base().Add(time.Hour))
	_, err = s.SetDeviceBlock(ctx, b.ID, d.ID, []string{"ads"})
	wantErr(t, "block change by another account", err, store.ErrNotFound)
}

func testSessions(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	ctx := t.Context()
	now := base()
	a := newAccount(t, s, time.Time{})
	live := store.Session{TokenHash: Random(t, 32), AccountID: a.ID, ExpiresAt: now.Add(time.Hour)}
	old := store.Session{TokenHash: Random(t, 32), AccountID: a.ID, ExpiresAt: now.Add(-time.Second)}
	for _, se := range []store.Session{live, old} {
		if err := s.CreateSession(ctx, se, now); err != nil {
			t.Fatal(err)
		}
	}
	wantErr(t, "session of unknown account",
		s.CreateSession(ctx, store.Session{TokenHash: Random(t, 32), AccountID: a.ID + 1000, ExpiresAt: now.Add(time.Hour)}, now), store.ErrNotFound)
	tests := []struct {
		name string
		hash []byte
		at   time.Time
		err  error
	}{
		{"live", live.TokenHash, now, nil},
		{"just before expiry", live.TokenHash, now.Add(time.Hour - time.Microsecond), nil},
		{"at expiry", live.TokenHash, now.Add(time.Hour), store.ErrInvalidSession},
		{"expired", old.TokenHash, now, store.ErrInvalidSession},
		{"unknown", Random(t, 32), now, store.ErrInvalidSession},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.SessionByTokenHash(ctx, tt.hash, tt.at)
			if tt.err != nil {
				wantErr(t, "SessionByTokenHash", err, tt.err)
				return
			}
			if err != nil || got.AccountID != a.ID || !got.ExpiresAt.Equal(live.ExpiresAt) || string(got.TokenHash) != string(live.TokenHash) {
				t.Errorf("SessionByTokenHash = %+v, %v", got, err)
			}
		})
	}
	if n, err := s.DeleteExpiredSessions(ctx, now); err != nil || n != 1 {
		t.Errorf("DeleteExpiredSessions = %d, %v; want 1", n, err)
	}
	if err := s.DeleteSession(ctx, live.TokenHash); err != nil {
		t.Fatal(err)
	}
	_, err := s.SessionByTokenHash(ctx, live.TokenHash, now)
	wantErr(t, "session after logout", err, store.ErrInvalidSession)
	if err := s.DeleteSession(ctx, live.TokenHash); err != nil {
		t.Errorf("second logout: %v", err)
	}
	if n, err := s.DeleteExpiredSessions(ctx, now.Add(48*time.Hour)); err != nil || n != 0 {
		t.Errorf("DeleteExpiredSessions on nothing = %d, %v", n, err)
	}
}

func testGateways(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	ctx := t.Context()
	now := base()
	b := &store.Gateway{Name: "b-gw", Location: "se-sto", Endpoint: "gw-b.example:51820", TokenHash: Random(t, 32)}
	a := &store.Gateway{Name: "a-gw", Location: "de-fra", Endpoint: "gw-a.example:51820", TokenHash: Random(t, 32), Builtin: true}
	for _, g := range []*store.Gateway{b, a} {
		if id, err := s.CreateGateway(ctx, g); err != nil || id == 0 || g.ID != id {
			t.Fatalf("CreateGateway = %d, %v", id, err)
		}
	}
	_, err := s.CreateGateway(ctx, &store.Gateway{Name: "a-gw", Location: "x", Endpoint: "x:1", TokenHash: Random(t, 32)})
	wantErr(t, "CreateGateway with a taken name", err, store.ErrDuplicateName)

	gs, err := s.Gateways(ctx)
	if err != nil || len(gs) != 2 || gs[0].Name != "a-gw" || gs[1].Name != "b-gw" {
		t.Fatalf("Gateways = %+v, %v; want a-gw, b-gw", gs, err)
	}
	if !gs[0].Builtin || gs[1].Builtin || !gs[0].LastSeen.IsZero() || gs[0].PublicKey != "" || gs[0].CreatedAt.IsZero() {
		t.Errorf("fresh gateway read as %+v", gs[0])
	}
	if g, err := s.GatewayByName(ctx, "b-gw"); err != nil || g.ID != b.ID || g.Endpoint != b.Endpoint || g.Location != b.Location {
		t.Errorf("GatewayByName = %+v, %v", g, err)
	}
	if g, err := s.GatewayByTokenHash(ctx, a.TokenHash); err != nil || g.ID != a.ID {
		t.Errorf("GatewayByTokenHash = %+v, %v", g, err)
	}
	_, err = s.GatewayByName(ctx, "nope")
	wantErr(t, "GatewayByName unknown", err, store.ErrNotFound)
	_, err = s.GatewayByTokenHash(ctx, Random(t, 32))
	wantErr(t, "GatewayByTokenHash unknown", err, store.ErrNotFound)

	load := store.GatewayLoad{PublicKey: newKey(t), Peers: 42, RxBytes: 1<<40 + 1, TxBytes: 1<<33 + 7, At: now,
		Egress: []string{"198.51.100.8", "2001:db8::8"}, TLSPort: 443, QUICPort: 8443, CertPin: "pin"}
	if err := s.ReportGatewayLoad(ctx, a.ID, load); err != nil {
		t.Fatal(err)
	}
	g, err := s.GatewayByName(ctx, "a-gw")
	if err != nil || g.PublicKey != load.PublicKey || g.Peers != 42 || g.RxBytes != load.RxBytes || g.TxBytes != load.TxBytes ||
		!g.LastSeen.Equal(now) || !slices.Equal(g.Egress, load.Egress) ||
		g.TLSPort != 443 || g.QUICPort != 8443 || g.CertPin != "pin" {
		t.Errorf("after load report: %+v, %v", g, err)
	}
	// A report without egress addresses clears them.
	load.Egress = nil
	if err := s.ReportGatewayLoad(ctx, a.ID, load); err != nil {
		t.Fatal(err)
	}
	if g, err := s.GatewayByName(ctx, "a-gw"); err != nil || g.Egress != nil {
		t.Errorf("egress after a report without: %q, %v", g.Egress, err)
	}
	wantErr(t, "load of unknown gateway", s.ReportGatewayLoad(ctx, a.ID+1000, load), store.ErrNotFound)

	up := *b
	up.Location, up.Endpoint, up.TokenHash = "fi-hel", "gw-b2.example:51820", Random(t, 32)
	if err := s.UpdateGateway(ctx, &up); err != nil {
		t.Fatal(err)
	}
	if g, err := s.GatewayByTokenHash(ctx, up.TokenHash); err != nil || g.Location != "fi-hel" || g.Endpoint != up.Endpoint || g.Name != "b-gw" {
		t.Errorf("after update: %+v, %v", g, err)
	}
	_, err = s.GatewayByTokenHash(ctx, b.TokenHash)
	wantErr(t, "old token after update", err, store.ErrNotFound)
	missing := up
	missing.ID += 1000
	wantErr(t, "UpdateGateway unknown", s.UpdateGateway(ctx, &missing), store.ErrNotFound)

	if err := s.DeleteGateway(ctx, "b-gw"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "DeleteGateway twice", s.DeleteGateway(ctx, "b-gw"), store.ErrNotFound)
	if gs, err := s.Gateways(ctx); err != nil || len(gs) != 1 {
		t.Errorf("Gateways after delete = %+v, %v", gs, err)
	}
}

func testPeerMap(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	holdTombstones(t, s)
	ctx := t.Context()
	now := base()
	pc := peersSince(t, s, 0)
	if !pc.Full || pc.Version != 0 || len(pc.Peers) != 0 || len(pc.Removed) != 0 {
		t.Fatalf("empty map = %+v", pc)
	}
	paid := newAccount(t, s, now.Add(time.Hour))
	trial := &store.Account{CodeHash: Random(t, 32), Plan: store.PlanFree, TrialUntil: now.Add(time.Hour)}
	if _, err := s.CreateAccount(ctx, trial); err != nil {
		t.Fatal(err)
	}
	lapsed := newAccount(t, s, now.Add(-time.Hour))
	if v := version(t, s); v != 0 {
		t.Errorf("creating accounts changed the version to %d", v)
	}
	d1 := newDevice(t, s, paid.ID)
	v1 := version(t, s)
	d2 := newDevice(t, s, trial.ID)
	v2 := version(t, s)
	newDevice(t, s, lapsed.ID)
	if v := version(t, s); v1 != 1 || v2 != 2 || v != 2 {
		t.Errorf("versions %d, %d, %d; want 1, 2, 2 (an inactive account's device is no change)", v1, v2, v)
	}
	d3 := newDevice(t, s, paid.ID)
	if err := s.DeleteDevice(ctx, paid.ID, d3.ID); err != nil {
		t.Fatal(err)
	}
	v4 := version(t, s)

	tests := []struct {
		name    string
		since   int64
		full    bool
		peers   []string
		removed []string
	}{
		{"full", 0, true, sorted(d1.PublicKey, d2.PublicKey), nil},
		{"negative", -5, true, sorted(d1.PublicKey, d2.PublicKey), nil},
		{"after first", v1, false, sorted(d2.PublicKey), sorted(d3.PublicKey)},
		{"after second", v2, false, nil, sorted(d3.PublicKey)},
		{"current", v4, false, nil, nil},
		{"from the future", v4 + 100, true, sorted(d1.PublicKey, d2.PublicKey), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc := peersSince(t, s, tt.since)
			if pc.Version != v4 || pc.Full != tt.full || !slices.Equal(keys(pc.Peers), tt.peers) || !slices.Equal(sorted(pc.Removed...), tt.removed) {
				t.Errorf("PeersSince(%d) = %+v; want version %d full %v peers %v removed %v", tt.since, pc, v4, tt.full, tt.peers, tt.removed)
			}
		})
	}
	for _, p := range peersSince(t, s, 0).Peers {
		want := map[string]store.Peer{
			d1.PublicKey: {PublicKey: d1.PublicKey, AddrIndex: d1.AddrIndex, Plan: store.PlanPremium},
			d2.PublicKey: {PublicKey: d2.PublicKey, AddrIndex: d2.AddrIndex, Plan: store.PlanTrial},
		}[p.PublicKey]
		if !reflect.DeepEqual(p, want) {
			t.Errorf("peer %+v, want %+v", p, want)
		}
	}
}

func testTombstones(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	holdTombstones(t, s)
	ctx := t.Context()
	a := newAccount(t, s, base().Add(time.Hour))
	d := newDevice(t, s, a.ID)
	v := version(t, s)
	if err := s.DeleteDevice(ctx, a.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	gone := version(t, s)
	// The same key comes back on a new device: the gateway that saw it
	// leave must see it return, and one that missed both just sees it.
	back, err := s.CreateDevice(ctx, store.NewDevice{AccountID: a.ID, PublicKey: d.PublicKey, MaxDevices: 5, MinIndex: 100, MaxIndex: 200})
	if err != nil {
		t.Fatal(err)
	}
	for _, since := range []int64{v, gone} {
		pc := peersSince(t, s, since)
		if len(pc.Removed) != 0 || len(pc.Peers) != 1 || pc.Peers[0].PublicKey != d.PublicKey || pc.Peers[0].AddrIndex != back.AddrIndex {
			t.Errorf("PeersSince(%d) after the key returned = %+v", since, pc)
		}
	}
	if pc := peersSince(t, s, 0); len(pc.Peers) != 1 {
		t.Errorf("full map = %+v, want the one peer", pc)
	}
	if err := s.DeleteDevice(ctx, a.ID, back.ID); err != nil {
		t.Fatal(err)
	}
	pc := peersSince(t, s, v)
	if len(pc.Peers) != 0 || !slices.Equal(pc.Removed, []string{d.PublicKey}) {
		t.Errorf("after the second delete: %+v", pc)
	}
}

// testGatewaySync: a tombstone stays until every gateway that synced
// within the history age holds its version, and goes at once when no
// gateway counts; a gateway behind the dropped history gets the full map.
func testGatewaySync(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	ctx := t.Context()
	a := newAccount(t, s, base().Add(time.Hour))
	d1, d2, d3 := newDevice(t, s, a.ID), newDevice(t, s, a.ID), newDevice(t, s, a.ID)

	// No gateway: nobody needs the removal, so no tombstone is kept.
	v := version(t, s)
	if err := s.DeleteDevice(ctx, a.ID, d1.ID); err != nil {
		t.Fatal(err)
	}
	if pc := peersSince(t, s, v); !pc.Full {
		t.Errorf("with no gateway, the delta after a removal = %+v, want the full map", pc)
	}

	g1, g2 := holdTombstones(t, s), holdTombstones(t, s)
	v = version(t, s)
	for _, g := range []*store.Gateway{g1, g2} {
		if err := s.GatewaySynced(ctx, g.ID, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteDevice(ctx, a.ID, d2.ID); err != nil {
		t.Fatal(err)
	}
	removed := func(what string, want ...string) {
		t.Helper()
		if pc := peersSince(t, s, v); pc.Full || !slices.Equal(pc.Removed, want) {
			t.Errorf("%s: delta since %d = %+v, want removed %v", what, v, pc, want)
		}
	}
	removed("both gateways behind", d2.PublicKey)
	if err := s.GatewaySynced(ctx, g1.ID, version(t, s)); err != nil {
		t.Fatal(err)
	}
	removed("one gateway behind", d2.PublicKey)
	if err := s.GatewaySynced(ctx, g2.ID, version(t, s)); err != nil {
		t.Fatal(err)
	}
	if pc := peersSince(t, s, v); !pc.Full {
		t.Errorf("after both gateways synced, the delta since %d = %+v, want the full map (no tombstone left)", v, pc)
	}
	if pc := peersSince(t, s, version(t, s)); pc.Full || len(pc.Removed) != 0 {
		t.Errorf("changes since the synced version = %+v, want none", pc)
	}

	// A version above the current one (a restored database) holds nothing.
	v = version(t, s)
	if err := s.GatewaySynced(ctx, g2.ID, v+100); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDevice(ctx, a.ID, d3.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.GatewaySynced(ctx, g1.ID, version(t, s)); err != nil {
		t.Fatal(err)
	}
	removed("a gateway ahead of the database", d3.PublicKey)
	// A gateway silent since the cutoff does not keep them.
	if n, err := s.PrunePeerHistory(ctx, time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Errorf("PrunePeerHistory past every gateway's sync = %d, %v; want 1", n, err)
	}
	wantErr(t, "GatewaySynced of no gateway", s.GatewaySynced(ctx, 987654, 1), store.ErrNotFound)
}

func testActivity(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	holdTombstones(t, s)
	ctx := t.Context()
	now := base()
	paid := newAccount(t, s, now.Add(time.Hour))
	trial := &store.Account{CodeHash: Random(t, 32), Plan: store.PlanFree, TrialUntil: now.Add(3 * time.Hour)}
	if _, err := s.CreateAccount(ctx, trial); err != nil {
		t.Fatal(err)
	}
	never := newAccount(t, s, time.Time{})
	dp := newDevice(t, s, paid.ID)
	dt := newDevice(t, s, trial.ID)
	dn := newDevice(t, s, never.ID)

	sync := func(at time.Time, want int) {
		t.Helper()
		if n, err := s.SyncPeerActivity(ctx, at); err != nil || n != want {
			t.Fatalf("SyncPeerActivity(%v) = %d, %v; want %d", at.Sub(now), n, err, want)
		}
	}
	inMap := func(want ...string) {
		t.Helper()
		if got := keys(peersSince(t, s, 0).Peers); !slices.Equal(got, sorted(want...)) {
			t.Fatalf("map %v, want %v", got, sorted(want...))
		}
	}
	sync(now, 0)
	inMap(dp.PublicKey, dt.PublicKey)
	v := version(t, s)

	sync(now.Add(2*time.Hour), 1) // the paid time ended
	inMap(dt.PublicKey)
	pc := peersSince(t, s, v)
	if pc.Version != v+1 || len(pc.Peers) != 0 || !slices.Equal(pc.Removed, []string{dp.PublicKey}) {
		t.Errorf("delta after expiry = %+v", pc)
	}
	sync(now.Add(2*time.Hour), 0) // idempotent
	if got := version(t, s); got != v+1 {
		t.Errorf("a sync with nothing to do changed the version to %d", got)
	}

	paidUntil := now.Add(30 * 24 * time.Hour)
	if err := s.UpdateAccount(ctx, paid.ID, store.AccountUpdate{PaidUntil: &paidUntil}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateAccount(ctx, never.ID, store.AccountUpdate{TrialUntil: &paidUntil}); err != nil {
		t.Fatal(err)
	}
	sync(now.Add(2*time.Hour), 2) // renewed, and a trial started
	inMap(dp.PublicKey, dt.PublicKey, dn.PublicKey)
	pc = peersSince(t, s, v+1)
	if !slices.Equal(keys(pc.Peers), sorted(dp.PublicKey, dn.PublicKey)) || len(pc.Removed) != 0 {
		t.Errorf("delta after renewal = %+v", pc)
	}
	sync(now.Add(4*time.Hour), 1) // the first trial ended
	inMap(dp.PublicKey, dn.PublicKey)
	sync(paidUntil, 2) // everything ended: expiry is exclusive
	inMap()
	// Devices of an inactive account are kept, just not in the map.
	if ds, err := s.Devices(ctx, paid.ID); err != nil || len(ds) != 1 {
		t.Errorf("Devices of a lapsed account = %v, %v", ds, err)
	}
}

func testPlanChange(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	holdTombstones(t, s)
	ctx := t.Context()
	a := newAccount(t, s, base().Add(time.Hour))
	d := newDevice(t, s, a.ID)
	newDevice(t, s, newAccount(t, s, base().Add(time.Hour)).ID)
	v := version(t, s)
	free := store.PlanFree
	if err := s.UpdateAccount(ctx, a.ID, store.AccountUpdate{Plan: &free}); err != nil {
		t.Fatal(err)
	}
	pc := peersSince(t, s, v)
	// Paid, on the free plan's name: the trial's class, not the capped one.
	if len(pc.Peers) != 1 || !reflect.DeepEqual(pc.Peers[0], store.Peer{PublicKey: d.PublicKey, AddrIndex: d.AddrIndex, Plan: store.PlanTrial}) {
		t.Errorf("delta after a plan change = %+v", pc)
	}
	if err := s.UpdateAccount(ctx, a.ID, store.AccountUpdate{Plan: &free}); err != nil || version(t, s) != v+1 {
		t.Errorf("setting the same plan: %v, version %d", err, version(t, s))
	}
}

// receive waits for a version at least want on w.
func receive(tb testing.TB, w <-chan int64, want int64) {
	tb.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case v, ok := <-w:
			if !ok {
				tb.Fatalf("watch channel closed while waiting for version %d", want)
			}
			if v >= want {
				return
			}
		case <-timeout:
			tb.Fatalf("no notice of version %d within %v", want, waitTimeout)
		}
	}
}

func testWatch(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	ctx := t.Context()
	a := newAccount(t, s, base().Add(time.Hour))
	w := s.Watch(ctx)
	newDevice(t, s, a.ID)
	receive(t, w, version(t, s))

	// A receiver that reads nothing for a while gets the latest version
	// and nothing older after it.
	for range 5 {
		newDevice(t, s, newAccount(t, s, base().Add(time.Hour)).ID)
	}
	latest := version(t, s)
	receive(t, w, latest)
	select {
	case v := <-w:
		if v < latest {
			t.Errorf("received version %d after %d", v, latest)
		}
	default:
	}

	wctx, cancel := context.WithCancel(ctx)
	w2 := s.Watch(wctx)
	cancel()
	timeout := time.After(waitTimeout)
	for done := false; !done; {
		select {
		case _, ok := <-w2:
			done = !ok
		case <-timeout:
			t.Fatal("watch channel not closed after its context ended")
		}
	}
}

func testWatchOtherStore(t *testing.T, open func(testing.TB) store.Store) {
	s1 := open(t)
	s2 := open(t) // the same database, as another process sees it
	a := newAccount(t, s1, base().Add(time.Hour))
	w := s2.Watch(t.Context())
	newDevice(t, s1, a.ID)
	receive(t, w, version(t, s1))
	if v := version(t, s2); v != version(t, s1) {
		t.Errorf("second store reads version %d, first %d", v, version(t, s1))
	}
}

func testConcurrentLimit(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	ctx := t.Context()
	a := newAccount(t, s, base().Add(time.Hour))
	const n, limit = 100, 5
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := s.CreateDevice(ctx, store.NewDevice{AccountID: a.ID, PublicKey: newKey(t), MaxDevices: limit, MinIndex: 1, MaxIndex: 1000})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrDeviceLimit):
			t.Errorf("CreateDevice: %v", err)
		}
	}
	ds, err := s.Devices(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ok != limit || len(ds) != limit {
		t.Errorf("%d creations succeeded and %d devices exist; want %d", ok, len(ds), limit)
	}
}

func testConcurrentAddresses(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	ctx := t.Context()
	const accounts, perAccount = 200, 5
	var ids []int64
	for range accounts {
		ids = append(ids, newAccount(t, s, base().Add(time.Hour)).ID)
	}
	type result struct {
		d   *store.Device
		err error
	}
	results := make(chan result, accounts*perAccount)
	var wg sync.WaitGroup
	for i := range accounts * perAccount {
		wg.Go(func() {
			d, err := s.CreateDevice(ctx, store.NewDevice{
				AccountID: ids[i%accounts], PublicKey: newKey(t), MaxDevices: perAccount, MinIndex: 1, MaxIndex: 1 << 20,
			})
			results <- result{d, err}
		})
	}
	wg.Wait()
	close(results)
	seen := make(map[int64]bool)
	for r := range results {
		if r.err != nil {
			t.Errorf("CreateDevice: %v", r.err)
			continue
		}
		if seen[r.d.AddrIndex] {
			t.Errorf("index %d handed out twice", r.d.AddrIndex)
		}
		seen[r.d.AddrIndex] = true
	}
	// Lowest free first, nothing freed: exactly 1..n.
	for i := int64(1); i <= accounts*perAccount; i++ {
		if !seen[i] {
			t.Errorf("index %d not handed out", i)
			break
		}
	}
	pc := peersSince(t, s, 0)
	if len(pc.Peers) != accounts*perAccount || pc.Version != accounts*perAccount {
		t.Errorf("map has %d peers at version %d; want %d at %d", len(pc.Peers), pc.Version, accounts*perAccount, accounts*perAccount)
	}
}

func testConcurrentSync(t *testing.T, open func(testing.TB) store.Store) {
	stores := []store.Store{open(t), open(t)}
	holdTombstones(t, stores[0])
	ctx := t.Context()
	now := base()
	const devices = 10
	for range devices / 2 {
		a := newAccount(t, stores[0], now.Add(time.Hour))
		newDevice(t, stores[0], a.ID)
		newDevice(t, stores[0], a.ID)
	}
	v := version(t, stores[0])
	var total int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			n, err := stores[i%2].SyncPeerActivity(ctx, now.Add(2*time.Hour))
			if err != nil {
				t.Errorf("SyncPeerActivity: %v", err)
			}
			mu.Lock()
			total += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if total != devices {
		t.Errorf("concurrent syncs moved %d devices in all, want %d", total, devices)
	}
	if got := version(t, stores[1]); got != v+1 {
		t.Errorf("version %d after concurrent syncs, want %d (one change)", got, v+1)
	}
	if pc := peersSince(t, stores[1], v); len(pc.Removed) != devices || len(pc.Peers) != 0 {
		t.Errorf("delta = %d removed, %d peers; want %d, 0", len(pc.Removed), len(pc.Peers), devices)
	}
}

// testConcurrentDeltas: a follower applying deltas while two Stores (two
// serve processes) add and remove devices concurrently ends up with
// exactly the full map: no change is lost between versions, whatever
// order the writers' commits come in.
func testConcurrentDeltas(t *testing.T, open func(testing.TB) store.Store) {
	stores := []store.Store{open(t), open(t)}
	holdTombstones(t, stores[0])
	ctx := t.Context()
	const writers, rounds = 8, 20
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := range writers {
		s := stores[w%2]
		a := newAccount(t, s, base().Add(time.Hour))
		wg.Go(func() {
			var held []int64
			for range rounds {
				d, err := s.CreateDevice(ctx, store.NewDevice{AccountID: a.ID, PublicKey: newKey(t), MaxDevices: 5, MinIndex: 1, MaxIndex: 1 << 20})
				if err != nil {
					t.Errorf("CreateDevice: %v", err)
					return
				}
				if held = append(held, d.ID); len(held) > 2 {
					if err := s.DeleteDevice(ctx, a.ID, held[0]); err != nil {
						t.Errorf("DeleteDevice: %v", err)
						return
					}
					held = held[1:]
				}
			}
		})
	}
	go func() { wg.Wait(); close(done) }()
	have := make(map[string]bool)
	var since int64
	follow := func() {
		pc, err := stores[1].PeersSince(ctx, since)
		if err != nil {
			t.Fatalf("PeersSince(%d): %v", since, err)
		}
		if pc.Full {
			clear(have)
		}
		for _, k := range pc.Removed {
			delete(have, k)
		}
		for _, p := range pc.Peers {
			have[p.PublicKey] = true
		}
		since = pc.Version
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		follow()
	}
	follow()
	full := peersSince(t, stores[0], 0)
	if len(have) != len(full.Peers) {
		t.Errorf("follower holds %d peers, the full map has %d", len(have), len(full.Peers))
	}
	for _, p := range full.Peers {
		if !have[p.PublicKey] {
			t.Errorf("follower missed peer %d", p.AddrIndex)
		}
	}
	if want := int64(writers * (2*rounds - 2)); full.Version != want {
		t.Errorf("version %d after %d changes", full.Version, want)
	}
}

func testDeleteAccount(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	holdTombstones(t, s)
	ctx := t.Context()
	now := base()
	a := newAccount(t, s, now.Add(time.Hour))
	keep := newAccount(t, s, now.Add(time.Hour))
	d1, d2 := newDevice(t, s, a.ID), newDevice(t, s, a.ID)
	dk := newDevice(t, s, keep.ID)
	token := Random(t, 32)
	if err := s.CreateSession(ctx, store.Session{TokenHash: token, AccountID: a.ID, ExpiresAt: now.Add(time.Hour)}, now); err != nil {
		t.Fatal(err)
	}
	v := version(t, s)
	if err := s.DeleteAccount(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	pc := peersSince(t, s, v)
	if pc.Version != v+1 || len(pc.Peers) != 0 || !slices.Equal(sorted(pc.Removed...), sorted(d1.PublicKey, d2.PublicKey)) {
		t.Errorf("delta after account deletion = %+v", pc)
	}
	if got := keys(peersSince(t, s, 0).Peers); !slices.Equal(got, []string{dk.PublicKey}) {
		t.Errorf("map after deletion = %v", got)
	}
	_, err := s.SessionByTokenHash(ctx, token, now)
	wantErr(t, "session of a deleted account", err, store.ErrInvalidSession)
	if ds, err := s.Devices(ctx, a.ID); err != nil || len(ds) != 0 {
		t.Errorf("devices of a deleted account: %v, %v", ds, err)
	}
	// The keys and addresses are free again (an address once the pool's
	// top is taken: here the pool ends at the highest address held).
	d, err := s.CreateDevice(ctx, store.NewDevice{AccountID: keep.ID, PublicKey: d1.PublicKey, MaxDevices: 5, MinIndex: 1, MaxIndex: dk.AddrIndex})
	if err != nil || d.AddrIndex != min(d1.AddrIndex, d2.AddrIndex) {
		t.Errorf("re-registering a deleted account's key: %+v, %v (want index %d)", d, err, min(d1.AddrIndex, d2.AddrIndex))
	}
}

func testSchema(t *testing.T, open func(testing.TB) store.Store) {
	s := open(t)
	schema, err := s.Schema(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"accounts":        {"id", "code_hash", "email", "plan", "paid_until", "trial_until", "marketing_consent", "restricted", "created_at", "legal_hold", "last_used", "reminded_until", "lang"},
		"devices":         {"id", "account_id", "name", "public_key", "addr_index", "in_map", "peer_version", "created_at", "block", "free"},
		"sessions":        {"token_hash", "account_id", "expires_at"},
		"gateways":        {"id", "name", "location", "endpoint", "token_hash", "public_key", "builtin", "peers", "rx_bytes", "tx_bytes", "last_seen", "created_at", "egress", "synced_version", "synced_at", "tls_port", "quic_port", "cert_pin", "proxy_port"},
		"peer_version":    {"id", "version", "history_floor"},
		"peer_tombstones": {"public_key", "version", "removed_at"},
		"schema_version":  {"version"},
		// Privacy engine (0003).
		"policy_versions":  {"id", "published_at", "prose", "body"},
		"mail_outbox":      {"id", "kind", "account_id", "to_addr", "subject", "body", "attempts", "next_attempt_at", "created_at"},
		"support_tickets":  {"id", "account_id", "email", "token_hash", "subject", "status", "created_at", "updated_at", "lang"},
		"support_messages": {"id", "ticket_id", "from_operator", "body", "created_at"},
		"client_counters":  {"day", "os_version", "app_version", "count"},
		// Billing (0005).
		"billing_records": {"id", "account_id", "processor", "reference", "product", "days", "amount_cents", "currency", "created_at", "refunded_at"},
		// Recovery links (0007).
		"recovery_tokens": {"token_hash", "account_id", "expires_at"},
		// Erasure and early refunds (0008).
		"pending_refunds": {"processor", "reference", "refunded_at"},
		// Sign-up business (0009).
		"vouchers":         {"id", "code_hash", "days", "created_at", "redeemed_at"},
		"affiliates":       {"account_id", "code", "created_at"},
		"referrals":        {"id", "account_id", "affiliate_id", "created_at"},
		"affiliate_ledger": {"id", "affiliate_id", "billing_record_id", "kind", "amount_cents", "currency", "created_at"},
	}
	// Key age (0009).
	want["devices"] = append(want["devices"], "key_created_at", "proxy_hash")
	if fmt.Sprint(schema) != fmt.Sprint(want) {
		t.Errorf("Schema() =\n%v\nwant\n%v", schema, want)
	}
}
