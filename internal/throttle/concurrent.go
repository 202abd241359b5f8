package throttle

import (
	"net/netip"
	"sync"
)

// Concurrent limits the uses each source holds at once: the downloads of
// a speed test, the fetches of the web proxy. A source is counted only
// while it holds a use, and the hash key is replaced whenever no source
// holds any, so no hash outlives the uses it counts.
type Concurrent struct {
	// Limit is the number of uses a source may hold at once.
	Limit int

	mu   sync.Mutex
	key  [32]byte
	held map[[16]byte]int
}

// NewConcurrent returns a Concurrent allowing limit uses per source at
// once.
func NewConcurrent(limit int) *Concurrent {
	return &Concurrent{Limit: limit}
}

// Acquire takes one use for src. It reports false when src already holds
// Limit; otherwise the caller must call release once, when the use ends.
func (c *Concurrent) Acquire(src netip.Addr) (release func(), ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held == nil {
		newKey(&c.key)
		c.held = make(map[[16]byte]int)
	}
	h := keyed(&c.key, src)
	if c.held[h] >= c.Limit {
		return nil, false
	}
	c.held[h]++
	var once sync.Once
	return func() { once.Do(func() { c.release(h) }) }, true
}

func (c *Concurrent) release(h [16]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held[h]--; c.held[h] > 0 {
		return
	}
	delete(c.held, h)
	if len(c.held) == 0 {
		c.held = nil // the next Acquire draws a new key
	}
}

// Sources returns how many distinct sources hold a use now (for tests and
// aggregate metrics).
func (c *Concurrent) Sources() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.held)
}
