package resolver

import (
	"container/list"
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

// cache is a size-bounded LRU cache held in memory only.
type cache struct {
	mu    sync.Mutex
	size  int
	order *list.List // front: most recently used
	items map[cacheKey]*list.Element
}

func newCache(size int) *cache {
	return &cache{size: size, order: list.New(), items: make(map[cacheKey]*list.Element)}
}

// get returns the entry for k, expired or not; callers check expiry.
func (c *cache) get(k cacheKey) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		return nil
	}
	c.order.MoveToFront(el)
	return el.Value.(*cacheEntry)
}

// fresh reports whether k has an entry that has not expired at now,
// without counting it as used.
func (c *cache) fresh(k cacheKey, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	return ok && now.Before(el.Value.(*cacheEntry).expires)
}

// put stores e, evicting the least recently used entries beyond the bound.
func (c *cache) put(e *cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[e.key]; ok {
		el.Value = e
		c.order.MoveToFront(el)
		return
	}
	c.items[e.key] = c.order.PushFront(e)
	for c.order.Len() > c.size {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).key)
	}
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
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
