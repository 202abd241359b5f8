package gateway

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"golang.zx2c4.com/wireguard/tun"

	"veil/internal/apitypes"
	"veil/internal/wg"
)

// limiter caps the bandwidth of the active peers whose plan class has a
// cap (the free plan), in each direction, by a token bucket per peer and
// direction; a packet over the bucket is dropped, which TCP's congestion
// control answers by slowing to the cap. While no capped peer is active
// the data path costs one atomic load per batch; otherwise a packet of
// an uncapped peer costs one atomic bit test, and a read-locked map
// lookup only when the low 16 bits of its address are those of a capped
// peer's. A change (an admission, an idle peer, a class change) costs
// the same whatever the number of capped peers.
type limiter struct {
	mu     sync.Mutex // writers
	byKey  map[wg.Key]*capped
	counts map[uint16]int // capped addresses by their low 16 bits

	n      atomic.Int32 // capped peers
	filter [1 << 16 / 64]atomic.Uint64
	addrMu sync.RWMutex
	byAddr map[[16]byte]*capped
	// drops counts the packets dropped over a cap, all peers together.
	drops atomic.Uint64
}

// capped is one capped peer's buckets: down for packets to it (read from
// the TUN), up for packets from it (written to the TUN).
type capped struct {
	addrs    []netip.Addr
	bps      int64
	down, up *rate.Limiter
}

func newLimiter() *limiter {
	return &limiter{byKey: make(map[wg.Key]*capped), counts: make(map[uint16]int), byAddr: make(map[[16]byte]*capped)}
}

// minBurst is the smallest bucket: enough for a burst of full packets
// and for the largest packet the TUN hands over.
const minBurst = 64 << 10

// burst is the bucket size for a cap of bps: half a second of traffic,
// at least minBurst. TCP keeps a policed path full only when the bucket
// holds about a round trip of traffic at the cap, and a loaded tunnel's
// round trip reaches hundreds of milliseconds; a smaller bucket drops
// whole windows and TCP falls to a fraction of the cap (measured: a
// 50 ms bucket gave a third of it).
func burst(bps int64) int { return max(minBurst, int(bps/8/2)) }

// set caps k, whose addresses are addrs, at bps; a peer already capped
// the same keeps its buckets.
func (l *limiter) set(k wg.Key, addrs []netip.Addr, bps int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c, ok := l.byKey[k]; ok && c.bps == bps && sameAddrs(c.addrs, addrs) {
		return
	}
	l.remove(k)
	lim := rate.Limit(float64(bps) / 8)
	c := &capped{addrs: addrs, bps: bps, down: rate.NewLimiter(lim, burst(bps)), up: rate.NewLimiter(lim, burst(bps))}
	l.byKey[k] = c
	l.addrMu.Lock()
	for _, a := range addrs {
		b := a.As16()
		l.byAddr[b] = c
		lo := low16(b)
		if l.counts[lo]++; l.counts[lo] == 1 {
			l.filter[lo/64].Or(1 << (lo % 64))
		}
	}
	l.addrMu.Unlock()
	l.n.Store(int32(len(l.byKey)))
}

// drop lifts k's cap.
func (l *limiter) drop(k wg.Key) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.remove(k)
}

// remove is drop with l.mu held.
func (l *limiter) remove(k wg.Key) {
	c, ok := l.byKey[k]
	if !ok {
		return
	}
	delete(l.byKey, k)
	l.n.Store(int32(len(l.byKey)))
	l.addrMu.Lock()
	for _, a := range c.addrs {
		b := a.As16()
		if l.byAddr[b] == c {
			delete(l.byAddr, b)
		}
		lo := low16(b)
		if l.counts[lo]--; l.counts[lo] == 0 {
			delete(l.counts, lo)
			l.filter[lo/64].And(^uint64(1 << (lo % 64)))
		}
	}
	l.addrMu.Unlock()
}

// len reports how many peers are capped.
func (l *limiter) len() int { return int(l.n.Load()) }

func low16(b [16]byte) uint16 { return uint16(b[14])<<8 | uint16(b[15]) }

// lookup returns the capped peer that pkt goes to (dst) or comes from,
// or nil.
func (l *limiter) lookup(pkt []byte, dst bool) *capped {
	var key [16]byte
	switch {
	case len(pkt) >= 20 && pkt[0]>>4 == 4:
		off := 12
		if dst {
			off = 16
		}
		key[10], key[11] = 0xff, 0xff
		copy(key[12:], pkt[off:off+4])
	case len(pkt) >= 40 && pkt[0]>>4 == 6:
		off := 8
		if dst {
			off = 24
		}
		copy(key[:], pkt[off:off+16])
	default:
		return nil
	}
	if lo := low16(key); l.filter[lo/64].Load()&(1<<(lo%64)) == 0 {
		return nil
	}
	l.addrMu.RLock()
	c := l.byAddr[key]
	l.addrMu.RUnlock()
	return c
}

// limitedTUN is the TUN the WireGuard device sees: the data plane's, with
// the caps applied to what it reads (packets to peers) and what it is
// given to write (packets from peers).
type limitedTUN struct {
	tun.Device
	caps *limiter
}

// Read implements tun.Device. A dropped packet is given a size of 0,
// which wireguard-go skips.
func (t *limitedTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := t.Device.Read(bufs, sizes, offset)
	if t.caps.n.Load() == 0 {
		return n, err
	}
	var now time.Time
	for i := range n {
		pkt := bufs[i][offset : offset+sizes[i]]
		if c := t.caps.lookup(pkt, true); c != nil {
			if now.IsZero() {
				now = time.Now()
			}
			if !c.down.AllowN(now, len(pkt)) {
				sizes[i] = 0
				t.caps.drops.Add(1)
			}
		}
	}
	return n, err
}

// Write implements tun.Device. It drops packets from bufs in place:
// wireguard-go's receiver, the one caller, only reads bufs before it
// reuses the slice.
func (t *limitedTUN) Write(bufs [][]byte, offset int) (int, error) {
	if t.caps.n.Load() == 0 {
		return t.Device.Write(bufs, offset)
	}
	n := len(bufs)
	out := bufs[:0]
	var now time.Time
	for _, b := range bufs {
		if c := t.caps.lookup(b[offset:], false); c != nil {
			if now.IsZero() {
				now = time.Now()
			}
			if !c.up.AllowN(now, len(b)-offset) {
				t.caps.drops.Add(1)
				continue
			}
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return n, nil
	}
	if _, err := t.Device.Write(out, offset); err != nil {
		return 0, err
	}
	return n, nil
}

// classIndex returns the compact index of plan class name, giving it one
// the first time; 0 (never capped) is the empty name and, past 255
// names, any other.
func (s *peerState) classIndex(name string) uint8 {
	if name == "" {
		return 0
	}
	if i, ok := s.classes[name]; ok {
		return i
	}
	if len(s.classes) >= 255 {
		return 0
	}
	i := uint8(len(s.classes) + 1)
	s.classes[name] = i
	return i
}

// setPlans takes the limits of the peer map's header: a class it does
// not name has no cap.
func (s *peerState) setPlans(plans map[string]apitypes.PlanLimits) {
	var bps [256]int64
	for name, l := range plans {
		if i := s.classIndex(name); i != 0 && l.BandwidthBps > 0 {
			bps[i] = l.BandwidthBps
		}
	}
	if bps == s.bps {
		return
	}
	s.bps = bps
	for k := range s.active {
		s.refreshCap(k)
	}
}

// refreshCap brings k's cap in line with its class and activity.
func (s *peerState) refreshCap(k wg.Key) {
	if _, active := s.active[k]; !active {
		return // only active peers are capped (deactivate drops the cap)
	}
	a, ok := s.peers[k]
	if !ok || s.bps[a.class] == 0 {
		s.caps.drop(k)
		return
	}
	var addrs []netip.Addr
	for _, p := range s.allowedIPs(k) {
		addrs = append(addrs, p.Addr())
	}
	s.caps.set(k, addrs, s.bps[a.class])
}

func sameAddrs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
