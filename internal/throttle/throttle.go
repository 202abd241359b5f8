// Package throttle counts failures (or uses) per source in memory, to slow
// down guessing of access codes and to rate-limit the outbound tools, and
// the uses each source holds at once (Concurrent), without ever holding a
// source address.
//
// A source is known only by a keyed hash of its address (promise P1). The
// key is random, lives in RAM, and is replaced at the start of every
// window together with all counts, so yesterday's hashes cannot be linked
// to today's, and nothing survives a restart.
package throttle

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"net/netip"
	"sync"
	"time"
)

// Throttle limits failures per source within a fixed window.
type Throttle struct {
	// Limit is the number of failures allowed per window.
	Limit int
	// Window is how long counts and the hash key live.
	Window time.Duration
	// Now is the clock; nil: time.Now.
	Now func() time.Time

	mu     sync.Mutex
	key    [32]byte
	start  time.Time
	counts map[[16]byte]int
}

// New returns a Throttle allowing limit failures per window.
func New(limit int, window time.Duration) *Throttle {
	return &Throttle{Limit: limit, Window: window}
}

// Allowed reports whether src may try again, and if not, how long until
// the window ends.
func (t *Throttle) Allowed(src netip.Addr) (bool, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.rotate()
	if t.counts[t.hash(src)] < t.Limit {
		return true, 0
	}
	return false, t.start.Add(t.Window).Sub(now)
}

// Fail records a failure from src.
func (t *Throttle) Fail(src netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rotate()
	t.counts[t.hash(src)]++
}

// Take records one use by src and reports whether it was within the
// limit, and if not, how long until the window ends: a rate limit for
// things counted on every use rather than on failure.
func (t *Throttle) Take(src netip.Addr) (bool, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.rotate()
	h := t.hash(src)
	if t.counts[h] >= t.Limit {
		return false, t.start.Add(t.Window).Sub(now)
	}
	t.counts[h]++
	return true, 0
}

// Sources returns how many distinct sources are counted now (for tests
// and aggregate metrics).
func (t *Throttle) Sources() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rotate()
	return len(t.counts)
}

// rotate starts a new window, with a new key and no counts, when the
// current one has ended. The caller holds mu.
func (t *Throttle) rotate() time.Time {
	now := time.Now()
	if t.Now != nil {
		now = t.Now()
	}
	if t.counts == nil || now.Sub(t.start) >= t.Window || now.Before(t.start) {
		newKey(&t.key)
		t.start = now
		t.counts = make(map[[16]byte]int)
	}
	return now
}

func (t *Throttle) hash(src netip.Addr) [16]byte { return keyed(&t.key, src) }

func newKey(key *[32]byte) {
	if _, err := rand.Read(key[:]); err != nil {
		panic("throttle: crypto/rand failed: " + err.Error())
	}
}

// keyed hashes a source under key: the whole IPv4 address, or the /64 of
// an IPv6 address, since one IPv6 client holds a whole /64.
func keyed(key *[32]byte, src netip.Addr) [16]byte {
	src = src.Unmap()
	if src.Is6() {
		p, _ := src.Prefix(64)
		src = p.Addr()
	}
	m := hmac.New(sha256.New, key[:])
	b := src.AsSlice()
	m.Write(b)
	var out [16]byte
	copy(out[:], m.Sum(nil))
	clear(b)
	return out
}
