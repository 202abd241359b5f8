package resolver

import (
	"container/list"
	"hash/maphash"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// TTL bounds applied to everything cached.
const (
	maxTTL         = 24 * time.Hour
	maxNegativeTTL = 3 * time.Hour // RFC 2308 section 5
	staleTTL       = 30            // seconds, RFC 8767 section 4
)

type entryKind uint8

const (
	kindAnswer entryKind = iota
	kindDelegation
	kindKeys
)

type cacheKey struct {
	name  string // canonical (lower case, fully qualified)
	qtype uint16
	kind  entryKind
}

type cacheEntry struct {
	key cacheKey
	// msg is, for kindAnswer, the answer as received, TTLs untouched; its
	// AD bit is the validation result, so a hit costs no cryptography.
	msg     *dns.Msg
	wire    *wireForms   // kindAnswer: msg packed for the fast path; nil if unsuitable
	servers []netip.Addr // kindDelegation: name server addresses of the zone
	keys    *zoneKeys    // kindKeys: the zone's validated keys, or why they are bogus
	stored  time.Time
	expires time.Time
}

// cache is a size-bounded LRU cache held in memory only. It is split
// into shards by name, each with its own lock and LRU order, so that
// readers answering hits on several threads do not queue on one mutex
// (a hit moves its entry to the front, so even reads take the lock).
type cache struct {
	seed   maphash.Seed
	shards []cacheShard
}

type cacheShard struct {
	mu    sync.Mutex
	size  int
	order *list.List // front: most recently used
	items map[cacheKey]*list.Element
	_     [64]byte // keep neighbouring shards' locks off one cache line
}

// entriesPerShard is the least a shard holds: small caches (tests) are one
// shard, so the bound is exact for them.
const (
	entriesPerShard = 1024
	maxShards       = 64
)

func newCache(size int) *cache {
	n := 1
	for n < maxShards && size/(2*n) >= entriesPerShard {
		n *= 2
	}
	c := &cache{seed: maphash.MakeSeed(), shards: make([]cacheShard, n)}
	for i := range c.shards {
		// The shards' bounds add up to size.
		c.shards[i] = cacheShard{size: size / n, order: list.New(), items: make(map[cacheKey]*list.Element)}
		if i < size%n {
			c.shards[i].size++
		}
	}
	return c
}

func (c *cache) shard(name string) *cacheShard {
	if len(c.shards) == 1 {
		return &c.shards[0]
	}
	return &c.shards[maphash.String(c.seed, name)&uint64(len(c.shards)-1)]
}

// get returns the entry for k, expired or not; callers check expiry.
func (c *cache) get(k cacheKey) *cacheEntry {
	s := c.shard(k.name)
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.items[k]
	if !ok {
		return nil
	}
	s.order.MoveToFront(el)
	return el.Value.(*cacheEntry)
}

// getBytes is get for the entry of name (canonical), without making a
// string of it.
func (c *cache) getBytes(name []byte, qtype uint16, kind entryKind) *cacheEntry {
	var s *cacheShard
	if len(c.shards) == 1 {
		s = &c.shards[0]
	} else {
		s = &c.shards[maphash.Bytes(c.seed, name)&uint64(len(c.shards)-1)]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.items[cacheKey{name: string(name), qtype: qtype, kind: kind}]
	if !ok {
		return nil
	}
	s.order.MoveToFront(el)
	return el.Value.(*cacheEntry)
}

// fresh reports whether k has an entry that has not expired at now,
// without counting it as used.
func (c *cache) fresh(k cacheKey, now time.Time) bool {
	s := c.shard(k.name)
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.items[k]
	return ok && now.Before(el.Value.(*cacheEntry).expires)
}

// put stores e, evicting the least recently used entries beyond the bound.
func (c *cache) put(e *cacheEntry) {
	s := c.shard(e.key.name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.items[e.key]; ok {
		el.Value = e
		s.order.MoveToFront(el)
		return
	}
	s.items[e.key] = s.order.PushFront(e)
	for s.order.Len() > max(1, s.size) {
		last := s.order.Back()
		s.order.Remove(last)
		delete(s.items, last.Value.(*cacheEntry).key)
	}
}

func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += s.order.Len()
		s.mu.Unlock()
	}
	return n
}

// msgTTL is how long m may be cached: the smallest TTL of its records, or
// for a negative answer the SOA's negative TTL (RFC 2308 section 5). A
// negative answer without SOA and a server failure are not cached.
func msgTTL(m *dns.Msg) time.Duration {
	negative := m.Rcode == dns.RcodeNameError || (m.Rcode == dns.RcodeSuccess && len(m.Answer) == 0)
	if m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError {
		return 0
	}
	if negative {
		for _, rr := range m.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				ttl := min(soa.Hdr.Ttl, soa.Minttl)
				return min(time.Duration(ttl)*time.Second, maxNegativeTTL)
			}
		}
		return 0
	}
	ttl := uint32(maxTTL / time.Second)
	for _, sec := range [][]dns.RR{m.Answer, m.Ns} {
		for _, rr := range sec {
			ttl = min(ttl, rr.Header().Ttl)
		}
	}
	return time.Duration(ttl) * time.Second
}

// storeAnswer caches m for name and qtype.
func (r *Resolver) storeAnswer(name string, qtype uint16, m *dns.Msg) {
	ttl := msgTTL(m)
	if ttl <= 0 {
		return
	}
	now := r.now()
	r.cache.put(&cacheEntry{
		key:     cacheKey{name: name, qtype: qtype, kind: kindAnswer},
		msg:     m,
		wire:    packWires(m),
		stored:  now,
		expires: now.Add(ttl),
	})
}

// cachedAnswer returns a copy of the cached answer with TTLs aged. stale
// answers (past their TTL but within the serve-stale bound) are returned
// only when allowStale is set, with a short TTL.
func (r *Resolver) cachedAnswer(name string, qtype uint16, allowStale bool) *dns.Msg {
	e := r.cache.get(cacheKey{name: name, qtype: qtype, kind: kindAnswer})
	if e == nil {
		return nil
	}
	now := r.now()
	fresh := now.Before(e.expires)
	if !fresh && (!allowStale || !now.Before(e.expires.Add(r.serveStale))) {
		return nil
	}
	age := uint32(now.Sub(e.stored) / time.Second)
	m := e.msg.Copy()
	for _, sec := range [][]dns.RR{m.Answer, m.Ns} {
		for _, rr := range sec {
			h := rr.Header()
			switch {
			case !fresh:
				h.Ttl = staleTTL
			case h.Ttl > age:
				h.Ttl -= age
			default:
				h.Ttl = 0
			}
		}
	}
	return m
}
