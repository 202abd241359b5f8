package resolver

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"
)

// keyRotation is how often the limiter's hash key, and with it all its
// state, is replaced. The limiter never holds an address: only a keyed hash
// of it, which means nothing once the key is gone (promise P1).
const keyRotation = 10 * time.Minute

// limiter is a per-client token bucket held in memory only.
type limiter struct {
	rate  float64 // tokens per second
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	seed    maphash.Seed
	rotated time.Time
	buckets map[uint64]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate int, now func() time.Time) *limiter {
	return &limiter{
		rate:    float64(rate),
		burst:   float64(2 * rate),
		now:     now,
		seed:    maphash.MakeSeed(),
		rotated: now(),
		buckets: make(map[uint64]*bucket),
	}
}

// allow takes a token from a's bucket and reports whether there was one.
func (l *limiter) allow(a netip.Addr) bool {
	now := l.now()
	b16 := a.As16()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.rotated) >= keyRotation || now.Before(l.rotated) {
		l.seed = maphash.MakeSeed()
		l.rotated = now
		// A fresh map, not clear: clearing is O(n) under the lock and would
		// stall every query; the old table is left to the GC.
		l.buckets = make(map[uint64]*bucket)
	}
	k := maphash.Bytes(l.seed, b16[:])
	b, ok := l.buckets[k]
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[k] = b
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(l.burst, b.tokens+dt*l.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
