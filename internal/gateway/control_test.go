package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"veil/internal/apitypes"
	"veil/internal/wg"
)

const testToken = "gw-token"

// fakeControl answers the gateway's two endpoints from a map the test
// changes. Down makes it drop every connection, as an unreachable control
// plane would.
type fakeControl struct {
	srv  *httptest.Server
	down atomic.Bool

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every change
	version  int64
	peers    map[string]apitypes.Peer
	setAt    map[string]int64
	removed  map[string]int64
	reports  []apitypes.GatewayReport
	failures int // requests dropped while down
	polls    int // peer polls answered
	plans    map[string]apitypes.PlanLimits
}

func newFakeControl(t testing.TB) *fakeControl {
	t.Helper()
	f := &fakeControl{
		changed: make(chan struct{}),
		version: 1,
		peers:   make(map[string]apitypes.Peer),
		setAt:   make(map[string]int64),
		removed: make(map[string]int64),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/gateway/report", f.report)
	mux.HandleFunc("GET /api/v1/gateway/peers", f.peerMap)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeControl) authorized(w http.ResponseWriter, r *http.Request) bool {
	if f.down.Load() {
		f.mu.Lock()
		f.failures++
		f.mu.Unlock()
		panic(http.ErrAbortHandler) // drop the connection
	}
	if r.Header.Get("Authorization") != "Bearer "+testToken {
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(apitypes.Error{Error: "bad token"})
		return false
	}
	return true
}

func (f *fakeControl) report(w http.ResponseWriter, r *http.Request) {
	if !f.authorized(w, r) {
		return
	}
	var rep apitypes.GatewayReport
	if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.reports = append(f.reports, rep)
	f.mu.Unlock()
	json.NewEncoder(w).Encode(apitypes.GatewayConfig{
		Name:       "test-1",
		TunnelIPv4: "10.64.0.1/10",
		TunnelIPv6: "fd7a:7665:696c::1/64",
	})
}

func (f *fakeControl) peerMap(w http.ResponseWriter, r *http.Request) {
	if !f.authorized(w, r) {
		return
	}
	since, _ := strconv.ParseInt(r.URL.Query().Get("since"), 10, 64)
	wait, err := time.ParseDuration(r.URL.Query().Get("wait"))
	if err != nil || wait > 5*time.Second {
		wait = 5 * time.Second
	}
	f.mu.Lock()
	if since == f.version {
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-time.After(wait):
		case <-r.Context().Done():
			return
		}
		if f.down.Load() {
			panic(http.ErrAbortHandler)
		}
		f.mu.Lock()
	}
	defer f.mu.Unlock()
	f.polls++
	m := apitypes.PeerMap{Version: f.version, Full: since == 0 || since > f.version, Plans: f.plans}
	for k, p := range f.peers {
		if m.Full || f.setAt[k] > since {
			m.Peers = append(m.Peers, p)
		}
	}
	if !m.Full {
		for k, v := range f.removed {
			if v > since {
				m.Removed = append(m.Removed, k)
			}
		}
	}
	json.NewEncoder(w).Encode(m)
}

// set adds or changes a peer and returns the new map version.
func (f *fakeControl) set(p apitypes.Peer) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version++
	f.peers[p.PublicKey] = p
	f.setAt[p.PublicKey] = f.version
	delete(f.removed, p.PublicKey)
	close(f.changed)
	f.changed = make(chan struct{})
	return f.version
}

// remove removes a peer and returns the new map version.
func (f *fakeControl) remove(key string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version++
	delete(f.peers, key)
	delete(f.setAt, key)
	f.removed[key] = f.version
	close(f.changed)
	f.changed = make(chan struct{})
	return f.version
}

func (f *fakeControl) failureCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failures
}

func (f *fakeControl) lastReport() (apitypes.GatewayReport, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reports) == 0 {
		return apitypes.GatewayReport{}, false
	}
	return f.reports[len(f.reports)-1], true
}

// waitFor polls cond until it holds, failing the test after a bounded
// number of tries. The bound only ends a failing test; nothing asserts
// on how long a change takes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestPeerStateDiff(t *testing.T) {
	pools := []netip.Prefix{netip.MustParsePrefix("10.64.0.0/10"), netip.MustParsePrefix("fd7a:7665:696c::/64")}
	k := func(i byte) wg.Key { return wg.Key{i} }
	ip := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, x := range s {
			out = append(out, netip.MustParsePrefix(x))
		}
		return out
	}
	peer := func(i byte, ips ...string) apitypes.Peer {
		return apitypes.Peer{PublicKey: k(i).Base64(), AllowedIPs: ips}
	}
	tests := []struct {
		name    string
		have    map[wg.Key][]netip.Prefix
		m       apitypes.PeerMap
		set     []wg.Key
		remove  []wg.Key
		invalid int
	}{
		{
			name: "full from empty",
			m:    apitypes.PeerMap{Full: true, Peers: []apitypes.Peer{peer(1, "10.64.0.2/32"), peer(2, "10.64.0.3/32")}},
			set:  []wg.Key{k(1), k(2)},
		},
		{
			name:   "full keeps unchanged, removes missing",
			have:   map[wg.Key][]netip.Prefix{k(1): ip("10.64.0.2/32"), k(2): ip("10.64.0.3/32")},
			m:      apitypes.PeerMap{Full: true, Peers: []apitypes.Peer{peer(1, "10.64.0.2/32"), peer(3, "10.64.0.4/32")}},
			set:    []wg.Key{k(3)},
			remove: []wg.Key{k(2)},
		},
		{
			name: "delta changes allowed IPs",
			have: map[wg.Key][]netip.Prefix{k(1): ip("10.64.0.2/32")},
			m:    apitypes.PeerMap{Peers: []apitypes.Peer{peer(1, "fd7a:7665:696c::2/128", "10.64.0.2/32")}},
			set:  []wg.Key{k(1)},
		},
		{
			name: "delta same allowed IPs in other order is no change",
			have: map[wg.Key][]netip.Prefix{k(1): ip("10.64.0.2/32", "fd7a:7665:696c::2/128")},
			m:    apitypes.PeerMap{Peers: []apitypes.Peer{peer(1, "fd7a:7665:696c::2/128", "10.64.0.2/32")}},
		},
		{
			name:   "delta removes, ignoring unknown keys",
			have:   map[wg.Key][]netip.Prefix{k(1): ip("10.64.0.2/32"), k(2): ip("10.64.0.3/32")},
			m:      apitypes.PeerMap{Removed: []string{k(2).Base64(), k(9).Base64()}},
			remove: []wg.Key{k(2)},
		},
		{
			name:    "allowed IPs outside the pools and bad keys are skipped",
			m:       apitypes.PeerMap{Peers: []apitypes.Peer{peer(1, "0.0.0.0/0"), peer(2, "10.64.0.3/32", "192.0.2.1/32"), {PublicKey: "bad", AllowedIPs: []string{"10.64.0.9/32"}}}, Removed: []string{"bad"}},
			set:     []wg.Key{k(2)},
			invalid: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newPeerState()
			for key, v := range tt.have {
				s.setAllowed(key, v)
			}
			ch := s.diff(tt.m, pools)
			var set []wg.Key
			for _, p := range ch.set {
				set = append(set, p.PublicKey)
				for _, a := range p.AllowedIPs {
					if !pools[0].Contains(a.Addr()) && !pools[1].Contains(a.Addr()) {
						t.Errorf("allowed IP %v outside the pools", a)
					}
				}
			}
			cmp := func(a, b wg.Key) int { return slices.Compare(a[:], b[:]) }
			slices.SortFunc(set, cmp)
			slices.SortFunc(ch.remove, cmp)
			if !slices.Equal(set, tt.set) || !slices.Equal(ch.remove, tt.remove) || ch.invalid != tt.invalid {
				t.Fatalf("diff = set %v remove %v invalid %d; want %v %v %d", len(set), len(ch.remove), ch.invalid, len(tt.set), len(tt.remove), tt.invalid)
			}
			s.commit(7, ch)
			if s.version != 7 {
				t.Fatalf("version %d after commit", s.version)
			}
		})
	}
}

func TestPeerStateBlock(t *testing.T) {
	pools := []netip.Prefix{netip.MustParsePrefix("10.64.0.0/10"), netip.MustParsePrefix("fd7a:7665:696c::/64")}
	key := wg.Key{9}
	peer := apitypes.Peer{PublicKey: key.Base64(), AllowedIPs: []string{"10.64.0.9/32", "fd7a:7665:696c::9/128"}, Block: []string{"ads"}}
	v4, v6 := netip.MustParseAddr("10.64.0.9"), netip.MustParseAddr("fd7a:7665:696c::9")
	s := newPeerState()

	ch := s.diff(apitypes.PeerMap{Full: true, Peers: []apitypes.Peer{peer}}, pools)
	s.commit(1, ch)
	if got := s.blockFor(v4); got != nil {
		t.Errorf("an authorised peer not yet active has categories %q by address", got)
	}
	s.activate(key, time.Now())
	if got := s.blockFor(v4); !slices.Equal(got, []string{"ads"}) {
		t.Errorf("blockFor(v4) = %q", got)
	}
	if got := s.blockFor(v6); !slices.Equal(got, []string{"ads"}) {
		t.Errorf("blockFor(v6) = %q", got)
	}
	if got := s.blockFor(netip.MustParseAddr("10.64.0.10")); got != nil {
		t.Errorf("another address has categories %q", got)
	}

	// A change of categories alone touches no WireGuard peer.
	peer.Block = []string{"malware", "trackers"}
	ch = s.diff(apitypes.PeerMap{Peers: []apitypes.Peer{peer}}, pools)
	if len(ch.set) != 0 || len(ch.remove) != 0 {
		t.Errorf("block change asks the device for %d sets, %d removals", len(ch.set), len(ch.remove))
	}
	s.commit(2, ch)
	if got := s.blockFor(v4); !slices.Equal(got, []string{"malware", "trackers"}) {
		t.Errorf("after change blockFor = %q", got)
	}

	// Removal forgets both the categories and the address.
	s.commit(3, s.diff(apitypes.PeerMap{Removed: []string{key.Base64()}}, pools))
	if got := s.blockFor(v4); got != nil || len(s.byAddr) != 0 || len(s.block) != 0 {
		t.Errorf("after removal: blockFor = %q, byAddr %d, block %d", got, len(s.byAddr), len(s.block))
	}
}

// TestPeerStateOnDemand: the device is asked only about active peers;
// admission follows the authorised set and the room left; idle peers go.
func TestPeerStateOnDemand(t *testing.T) {
	pools := []netip.Prefix{netip.MustParsePrefix("10.64.0.0/10")}
	a, b, c := wg.Key{1}, wg.Key{2}, wg.Key{3}
	peer := func(k wg.Key, ip string) apitypes.Peer {
		return apitypes.Peer{PublicKey: k.Base64(), AllowedIPs: []string{ip}}
	}
	s := newPeerState()
	ch := s.diff(apitypes.PeerMap{Full: true, Peers: []apitypes.Peer{peer(a, "10.64.0.2/32"), peer(b, "10.64.0.3/32")}}, pools)
	if set, rm := s.onDevice(ch); len(set) != 0 || len(rm) != 0 {
		t.Fatalf("a full map asks the device for %d sets, %d removals before any handshake", len(set), len(rm))
	}
	s.commit(1, ch)

	if _, v := s.admit(c, 1); v != admitNo {
		t.Errorf("admit(unknown) = %v", v)
	}
	p, v := s.admit(a, 1)
	if v != admitYes || p.PublicKey != a || len(p.AllowedIPs) != 1 || p.AllowedIPs[0].String() != "10.64.0.2/32" {
		t.Fatalf("admit(authorised) = %+v, %v", p, v)
	}
	t0 := time.Now()
	s.activate(a, t0)
	if _, v := s.admit(a, 1); v != admitNo {
		t.Errorf("admit(active) = %v", v)
	}
	if _, v := s.admit(b, 1); v != admitNoRoom {
		t.Errorf("admit past the limit = %v", v)
	}

	// A change and a removal reach the device only for the active peer.
	ch = s.diff(apitypes.PeerMap{Peers: []apitypes.Peer{peer(a, "10.64.0.9/32"), peer(b, "10.64.0.8/32")}}, pools)
	if set, _ := s.onDevice(ch); len(set) != 1 || set[0].PublicKey != a {
		t.Errorf("onDevice(change) sets %d peers, want only the active one", len(set))
	}
	s.commit(2, ch)
	if got, ok := s.byAddr[netip.MustParseAddr("10.64.0.9")]; !ok || got != a {
		t.Error("the active peer's new address is not indexed")
	}
	if _, ok := s.byAddr[netip.MustParseAddr("10.64.0.8")]; ok {
		t.Error("an inactive peer's address is indexed")
	}

	// Idle: a handshake older than the timeout, or none since an old
	// admission, takes the peer off; a recent one keeps it.
	timeout := 5 * time.Minute
	live := []wg.PeerStats{{PublicKey: a, LastHandshake: t0.Add(time.Second)}}
	if got := s.idle(live, t0.Add(time.Minute), timeout); len(got) != 0 {
		t.Errorf("a fresh peer is idle")
	}
	if got := s.idle(live, t0.Add(6*time.Minute), timeout); len(got) != 1 || got[0] != a {
		t.Errorf("idle after the timeout = %d peers", len(got))
	}
	noHandshake := []wg.PeerStats{{PublicKey: a}}
	if got := s.idle(noHandshake, t0.Add(time.Minute), timeout); len(got) != 0 {
		t.Errorf("a peer just admitted is idle before its handshake")
	}
	if got := s.idle(noHandshake, t0.Add(6*time.Minute), timeout); len(got) != 1 {
		t.Errorf("a peer that never completed a handshake stays")
	}
	if got := s.idle([]wg.PeerStats{{PublicKey: c}}, t0, timeout); len(got) != 1 {
		t.Errorf("a device peer not recorded as active stays")
	}

	ch = s.diff(apitypes.PeerMap{Removed: []string{a.Base64()}}, pools)
	if _, rm := s.onDevice(ch); len(rm) != 1 || rm[0] != a {
		t.Errorf("removing an active peer does not reach the device")
	}
	s.commit(3, ch)
	if len(s.active) != 0 || len(s.byAddr) != 0 {
		t.Errorf("after removal: %d active, %d indexed", len(s.active), len(s.byAddr))
	}
}

// TestAllowedCompact: the compact form gives back what it was given, and
// a shape it cannot hold is kept whole.
func TestAllowedCompact(t *testing.T) {
	s := newPeerState()
	for i, in := range [][]string{
		{"10.64.0.2/32", "fd7a:7665:696c::2/128"},
		{"10.64.0.2/32"},
		{"fd7a:7665:696c::2/128"},
		{"10.64.0.2/32", "10.64.0.3/32", "fd7a:7665:696c::2/128"},
		{"10.64.1.0/24"},
	} {
		var ps []netip.Prefix
		for _, x := range in {
			ps = append(ps, netip.MustParsePrefix(x))
		}
		k := wg.Key{byte(i + 1)}
		s.setAllowed(k, ps)
		if got := s.allowedIPs(k); !slices.Equal(got, ps) {
			t.Errorf("allowedIPs after setAllowed(%v) = %v", ps, got)
		}
	}
	if len(s.extra) != 1 {
		t.Errorf("%d devices kept whole, want only the one with two IPv4 prefixes", len(s.extra))
	}
	s.setAllowed(wg.Key{4}, []netip.Prefix{netip.MustParsePrefix("10.64.0.9/32")})
	if len(s.extra) != 0 {
		t.Error("a device whose allowed IPs shrank to the compact shape is still kept whole")
	}
}
