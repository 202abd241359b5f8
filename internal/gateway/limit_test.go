package gateway

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tun"

	"veil/internal/apitypes"
	"veil/internal/wg"
)

// packet returns an IP packet of n bytes from src to dst.
func packet(src, dst netip.Addr, n int) []byte {
	if src.Is4() {
		p := make([]byte, max(n, 20))
		p[0] = 0x45
		binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
		s, d := src.As4(), dst.As4()
		copy(p[12:], s[:])
		copy(p[16:], d[:])
		return p
	}
	p := make([]byte, max(n, 40))
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:], uint16(len(p)-40))
	s, d := src.As16(), dst.As16()
	copy(p[8:], s[:])
	copy(p[24:], d[:])
	return p
}

// fakeTUN hands out its packets in batches and keeps what it is given.
type fakeTUN struct {
	tun.Device
	out     [][]byte
	written int
}

func (f *fakeTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n := 0
	for n < len(bufs) && len(f.out) > 0 {
		sizes[n] = copy(bufs[n][offset:], f.out[0])
		f.out = f.out[1:]
		n++
	}
	return n, nil
}

func (f *fakeTUN) Write(bufs [][]byte, offset int) (int, error) {
	f.written += len(bufs)
	return len(bufs), nil
}

func TestLimiterIndex(t *testing.T) {
	l := newLimiter()
	free4, free6 := netip.MustParseAddr("10.64.1.2"), netip.MustParseAddr("fd7a:7665:696c::102")
	paid4, paid6 := netip.MustParseAddr("10.64.1.3"), netip.MustParseAddr("fd7a:7665:696c::103")
	// Same low 16 bits as free4: passes the filter, found absent in the map.
	twin4 := netip.MustParseAddr("10.65.1.2")
	inet := netip.MustParseAddr("198.51.100.2")
	inet6 := netip.MustParseAddr("2001:db8::2")
	if l.len() != 0 {
		t.Fatal("an empty limiter caps")
	}
	l.set(wg.Key{1}, []netip.Addr{free4, free6}, 1_000_000)
	// A second capped peer whose addresses share nothing: dropping it
	// must leave the first's filter bits.
	l.set(wg.Key{2}, []netip.Addr{netip.MustParseAddr("10.64.9.9")}, 1_000_000)
	l.drop(wg.Key{2})
	ix := l
	c := l.byKey[wg.Key{1}]
	for _, tt := range []struct {
		pkt  []byte
		dst  bool
		want *capped
	}{
		{packet(inet, free4, 100), true, c},
		{packet(free4, inet, 100), false, c},
		{packet(inet6, free6, 100), true, c},
		{packet(free6, inet6, 100), false, c},
		{packet(inet, paid4, 100), true, nil},
		{packet(paid4, inet, 100), false, nil},
		{packet(inet6, paid6, 100), true, nil},
		{packet(inet, twin4, 100), true, nil},
		{packet(free4, inet, 100), true, nil}, // free4 is the source, not the destination
		{packet(free4, inet, 100)[:19], false, nil},
		{[]byte{}, true, nil},
	} {
		if got := ix.lookup(tt.pkt, tt.dst); got != tt.want {
			t.Errorf("lookup(% x…, dst %t) = %p, want %p", tt.pkt[:min(len(tt.pkt), 4)], tt.dst, got, tt.want)
		}
	}
	// The same cap again keeps the buckets; another replaces them.
	l.set(wg.Key{1}, []netip.Addr{free4, free6}, 1_000_000)
	if l.byKey[wg.Key{1}] != c {
		t.Error("setting the same cap replaced the buckets")
	}
	l.set(wg.Key{1}, []netip.Addr{free4, free6}, 2_000_000)
	if l.byKey[wg.Key{1}] == c || l.byKey[wg.Key{1}].down.Limit() != 250_000 {
		t.Error("a new cap did not take")
	}
	// A twin sharing free4's low 16 bits comes and goes: free4 stays.
	l.set(wg.Key{3}, []netip.Addr{twin4}, 1_000_000)
	l.drop(wg.Key{3})
	if ix.lookup(packet(inet, free4, 100), true) == nil {
		t.Error("dropping a peer whose address shares the low 16 bits lifted the other's cap")
	}
	l.drop(wg.Key{1})
	if l.len() != 0 || len(l.byAddr) != 0 || len(l.counts) != 0 || ix.lookup(packet(inet, free4, 100), true) != nil {
		t.Error("dropping the last capped peer left it in the index")
	}
	for i := range l.filter {
		if l.filter[i].Load() != 0 {
			t.Fatal("dropping the last capped peer left filter bits")
		}
	}
}

// TestLimitedTUN drives more than a bucket's worth of packets for a capped
// and an uncapped peer through the wrapper, both ways: only the capped
// peer's are dropped, and the bucket lets about its size through.
func TestLimitedTUN(t *testing.T) {
	free, paid := netip.MustParseAddr("10.64.1.2"), netip.MustParseAddr("10.64.1.3")
	inet := netip.MustParseAddr("198.51.100.2")
	const size, count = 1400, 400 // 560 kB, many buckets of a 64 kbit cap
	l := newLimiter()
	l.set(wg.Key{1}, []netip.Addr{free}, 64_000)
	budget := burst(64_000)/size + 2 // the bucket, and what refills while the test runs

	f := &fakeTUN{}
	for range count {
		f.out = append(f.out, packet(inet, free, size), packet(inet, paid, size))
	}
	lt := &limitedTUN{Device: f, caps: l}
	bufs, sizes := make([][]byte, 64), make([]int, 64)
	for i := range bufs {
		bufs[i] = make([]byte, 16+size)
	}
	var freeIn, paidIn int
	for len(f.out) > 0 {
		n, _ := lt.Read(bufs, sizes, 16)
		for i := range n {
			if sizes[i] == 0 {
				continue
			}
			if netip.AddrFrom4([4]byte(bufs[i][16+16:16+20])) == free {
				freeIn++
			} else {
				paidIn++
			}
		}
	}
	if paidIn != count || freeIn < budget-4 || freeIn > budget {
		t.Errorf("read: %d of %d packets to the capped peer passed (bucket: %d), %d of %d to the other", freeIn, count, budget, paidIn, count)
	}

	var in [][]byte
	for range count {
		in = append(in, append(make([]byte, 16), packet(free, inet, size)...))
	}
	lt.Write(in, 16)
	if f.written < budget-4 || f.written > budget {
		t.Errorf("write: %d of %d packets from the capped peer passed, want about %d", f.written, count, budget)
	}
	f.written = 0
	in = in[:0]
	for range count {
		in = append(in, append(make([]byte, 16), packet(paid, inet, size)...))
	}
	lt.Write(in, 16)
	if f.written != count {
		t.Errorf("write: %d of %d packets from the uncapped peer passed", f.written, count)
	}
	if l.drops.Load() == 0 {
		t.Error("no drops counted")
	}
}

// TestPeerStateCaps follows a peer's class through the peer map: capped
// while active on a class with a cap, not once paid, not when the header
// drops the cap, not once idle.
func TestPeerStateCaps(t *testing.T) {
	pools := []netip.Prefix{netip.MustParsePrefix("10.64.0.0/10"), netip.MustParsePrefix("fd7a:7665:696c::/64")}
	s := newPeerState()
	key := wg.Key{7}
	peer := apitypes.Peer{PublicKey: key.Base64(), AllowedIPs: []string{"10.64.0.9/32", "fd7a:7665:696c::9/128"}, Plan: "free"}
	free := map[string]apitypes.PlanLimits{"free": {BandwidthBps: 1_000_000}}
	apply := func(plans map[string]apitypes.PlanLimits, m apitypes.PeerMap) {
		t.Helper()
		s.setPlans(plans)
		s.commit(m.Version, s.diff(m, pools))
	}
	apply(free, apitypes.PeerMap{Version: 1, Full: true, Peers: []apitypes.Peer{peer}})
	if s.caps.len() != 0 {
		t.Fatal("a peer not yet active is capped")
	}
	s.activate(key, time.Now())
	if s.caps.len() != 1 {
		t.Fatal("an active free peer is not capped")
	}
	c := s.caps.byKey[key]
	if c.bps != 1_000_000 || len(c.addrs) != 2 {
		t.Fatalf("cap = %+v", c)
	}
	paid := peer
	paid.Plan = "premium"
	apply(free, apitypes.PeerMap{Version: 2, Peers: []apitypes.Peer{paid}})
	if s.caps.len() != 0 {
		t.Fatal("a paid peer is still capped")
	}
	apply(free, apitypes.PeerMap{Version: 3, Peers: []apitypes.Peer{peer}})
	if s.caps.len() != 1 {
		t.Fatal("a peer back on the free plan is not capped")
	}
	apply(nil, apitypes.PeerMap{Version: 3, Peers: []apitypes.Peer{}})
	if s.caps.len() != 0 {
		t.Fatal("the cap outlived the header's limits")
	}
	apply(free, apitypes.PeerMap{Version: 3, Peers: []apitypes.Peer{}})
	if s.caps.len() != 1 {
		t.Fatal("the header's limits did not come back")
	}
	s.deactivate(key)
	if s.caps.len() != 0 {
		t.Fatal("an idle peer is still capped")
	}
	if got := s.peers[key].class; got == 0 || got != s.classes["free"] {
		t.Errorf("class index %d, want free's %d", got, s.classes["free"])
	}
}

// TestNetstackCap runs a free and a paid client through a netstack
// gateway over real WireGuard tunnels on loopback, each downloading and
// uploading more than the free cap's bucket: the limiter drops the free
// client's excess both ways and never touches the paid one's; a change
// of plan in the peer map lifts the cap.
func TestNetstackCap(t *testing.T) {
	const capBps = 16_000_000
	control := newFakeControl(t)
	control.mu.Lock()
	control.plans = map[string]apitypes.PlanLimits{"free": {BandwidthBps: capBps}}
	control.mu.Unlock()
	g, _ := startGateway(t, control, loopback, nil)
	free, paid := newClient(t, g), newClient(t, g)
	free.peer.Plan = "free"
	control.set(paid.peer)
	v := control.set(free.peer)
	waitFor(t, "peers applied", func() bool { return g.Stats().PeerMapVersion >= v })

	blob := make([]byte, 6<<20) // three of the free cap's buckets
	rand.Read(blob)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			n, _ := io.Copy(io.Discard, r.Body)
			fmt.Fprint(w, n)
			return
		}
		w.Write(blob)
	}))
	t.Cleanup(srv.Close)
	transfer := func(c *client, up bool) (int64, time.Duration) {
		t.Helper()
		hc := &http.Client{Transport: &http.Transport{DialContext: c.net.DialContext, DisableKeepAlives: true}, Timeout: 2 * time.Minute}
		start := time.Now()
		var n int64
		if up {
			resp, err := hc.Post(srv.URL, "application/octet-stream", bytes.NewReader(blob))
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fscan(resp.Body, &n)
			resp.Body.Close()
		} else {
			resp, err := hc.Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			n, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if n != int64(len(blob)) {
			t.Fatalf("moved %d bytes, want %d", n, len(blob))
		}
		return n, time.Since(start)
	}
	for _, up := range []bool{false, true} {
		before := g.peers.caps.drops.Load()
		n, d := transfer(paid, up)
		if after := g.peers.caps.drops.Load(); after != before {
			t.Errorf("up %t: %d packets dropped while only the paid client moved data", up, after-before)
		}
		t.Logf("paid, up %t: %.1f Mbit/s", up, float64(n)*8/d.Seconds()/1e6)
		n, d = transfer(free, up)
		if after := g.peers.caps.drops.Load(); after == before {
			t.Errorf("up %t: the free client moved three buckets' worth and nothing was dropped", up)
		}
		t.Logf("free, up %t: %.1f Mbit/s (cap %d Mbit/s)", up, float64(n)*8/d.Seconds()/1e6, capBps/1_000_000)
	}

	upgraded := free.peer
	upgraded.Plan = "premium"
	v = control.set(upgraded)
	waitFor(t, "upgrade applied", func() bool { return g.Stats().PeerMapVersion >= v })
	g.mu.Lock()
	capped := g.peers.caps.len()
	g.mu.Unlock()
	if capped != 0 {
		t.Fatalf("%d peers capped after the upgrade", capped)
	}
	before := g.peers.caps.drops.Load()
	transfer(free, false)
	if after := g.peers.caps.drops.Load(); after != before {
		t.Errorf("%d packets dropped after the upgrade", after-before)
	}
}

// BenchmarkLimitedTUNRead measures the wrapper's cost per batch of 64
// packets read from the TUN: with nobody capped, with capped peers but
// packets for an uncapped one, and packets for a capped one.
func BenchmarkLimitedTUNRead(b *testing.B) {
	// The capped addresses' low 16 bits are 0 to 999; paid's are not.
	inet, paid, free := netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("10.64.200.3"), netip.MustParseAddr("10.65.0.0")
	bufs, sizes := make([][]byte, 64), make([]int, 64)
	for i := range bufs {
		bufs[i] = make([]byte, 16+1400)
	}
	for _, tt := range []struct {
		name   string
		capped int
		to     netip.Addr
	}{{"no-wrapper", -1, paid}, {"nobody-capped", 0, paid}, {"uncapped-peer", 1000, paid}, {"capped-peer", 1000, free}} {
		b.Run(tt.name, func(b *testing.B) {
			l := newLimiter()
			for i := range max(tt.capped, 0) {
				a := netip.AddrFrom4([4]byte{10, 65, byte(i >> 8), byte(i)})
				l.set(wg.Key{byte(i), byte(i >> 8)}, []netip.Addr{a}, 100_000_000_000)
			}
			var dev tun.Device = &replayTUN{pkt: packet(inet, tt.to, 1400)}
			if tt.capped >= 0 {
				dev = &limitedTUN{Device: dev, caps: l}
			}
			for b.Loop() {
				dev.Read(bufs, sizes, 16)
			}
		})
	}
}

// replayTUN fills every buffer with the same packet, once: later reads
// only hand the same packets out again, so the benchmark measures the
// wrapper, not the copy.
type replayTUN struct {
	tun.Device
	pkt    []byte
	filled bool
}

func (r *replayTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	for i := range bufs {
		if !r.filled {
			copy(bufs[i][offset:], r.pkt)
		}
		sizes[i] = len(r.pkt)
	}
	r.filled = true
	return len(bufs), nil
}
