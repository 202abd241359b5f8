package resolver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"veil/internal/netguard"
	"veil/internal/redact"
)

// Bounds on the work one client query may cause.
const (
	maxDepth     = 8  // nested lookups: CNAME targets, name server addresses
	maxSteps     = 40 // upstream round trips in one iteration
	maxChain     = 10 // CNAMEs followed
	maxNSLookups = 3  // glueless name servers resolved per delegation
)

var (
	errMismatch  = errors.New("response does not match query")
	errTooDeep   = errors.New("resolution too deep")
	errNoServers = errors.New("no usable name servers")
	errLame      = errors.New("no usable answer")
)

// newQuery builds an upstream query with a random ID and an EDNS0 buffer
// of EDNSBufferSize. math/rand/v2's generator is ChaCha8 seeded by the
// runtime, so IDs cannot be predicted by an off-path attacker.
func newQuery(name string, qtype uint16, rd bool) *dns.Msg {
	q := new(dns.Msg)
	q.Id = uint16(rand.Uint32())
	q.RecursionDesired = rd
	q.Question = []dns.Question{{Name: name, Qtype: qtype, Qclass: dns.ClassINET}}
	q.SetEdns0(EDNSBufferSize, false)
	return q
}

// randomCase applies DNS 0x20 encoding: each letter's case is random, and
// the response must echo it exactly.
func randomCase(name string) string {
	b := []byte(name)
	bits := rand.Uint64()
	for i, c := range b {
		if i%64 == 0 && i > 0 {
			bits = rand.Uint64()
		}
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' {
			if bits&1 == 1 {
				c ^= 0x20
			}
			b[i] = c
			bits >>= 1
		}
	}
	return string(b)
}

// matches checks that resp answers q: same ID, a response, and the same
// question byte for byte, which verifies the 0x20 case pattern.
func matches(q, resp *dns.Msg) bool {
	return resp != nil && resp.Id == q.Id && resp.Response && len(resp.Question) == 1 &&
		resp.Question[0].Name == q.Question[0].Name &&
		resp.Question[0].Qtype == q.Question[0].Qtype &&
		resp.Question[0].Qclass == q.Question[0].Qclass
}

// clean builds the message the cache keeps: the question in canonical form,
// the answer and authority records, no OPT or additional records.
func clean(resp *dns.Msg, name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.Response = true
	m.Rcode = resp.Rcode
	m.Question = []dns.Question{{Name: name, Qtype: qtype, Qclass: dns.ClassINET}}
	m.Answer = resp.Answer
	for _, rr := range resp.Ns {
		if rr.Header().Rrtype != dns.TypeOPT {
			m.Ns = append(m.Ns, rr)
		}
	}
	return m
}

// resolve answers from the cache, or looks up once for all concurrent
// askers, or falls back to a stale answer.
func (r *Resolver) resolve(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	return r.resolveDepth(ctx, name, qtype, 0)
}

func (r *Resolver) resolveDepth(ctx context.Context, name string, qtype uint16, depth int) (*dns.Msg, error) {
	if m := r.cachedAnswer(name, qtype, false); m != nil {
		return m, nil
	}
	if depth > maxDepth {
		return nil, errTooDeep
	}
	key := fmt.Sprintf("%d/%s", qtype, name)
	v, err, _ := r.flight.Do(key, func() (any, error) {
		var m *dns.Msg
		var err error
		if len(r.forward) > 0 {
			m, err = r.forwardQuery(ctx, name, qtype)
		} else {
			m, err = r.iterate(ctx, name, qtype, depth)
		}
		if err != nil {
			return nil, err
		}
		r.storeAnswer(name, qtype, m)
		return m, nil
	})
	if err != nil {
		if m := r.cachedAnswer(name, qtype, true); m != nil {
			r.log.Debug("serving stale answer")
			return m, nil
		}
		// The error may name upstream servers, which hint at the query:
		// only its class is logged.
		r.log.Debug("resolution failed", "name", redact.Name(name), "reason", errClass(err))
		return nil, fmt.Errorf("%w: %w", ErrServFail, err)
	}
	return v.(*dns.Msg).Copy(), nil
}

// errClass names the kind of err without its text.
func errClass(err error) string {
	switch {
	case errors.Is(err, errMismatch):
		return "mismatch"
	case errors.Is(err, errTooDeep):
		return "too deep"
	case errors.Is(err, errNoServers):
		return "no servers"
	case errors.Is(err, errLame):
		return "lame"
	case errors.Is(err, netguard.ErrDenied):
		return "egress refused"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "timeout"
	}
	return "network"
}

// isSub reports whether child is parent or below it (both canonical).
func isSub(parent, child string) bool {
	return dns.IsSubDomain(parent, child)
}

// lastLabels returns the last n labels of name.
func lastLabels(name string, n int) string {
	idx := dns.Split(name)
	if n >= len(idx) {
		return name
	}
	if n <= 0 {
		return "."
	}
	return name[idx[len(idx)-n]:]
}

// closestDelegation returns the deepest cached zone cut above or at name,
// or the root.
func (r *Resolver) closestDelegation(name string) (string, []netip.Addr) {
	now := r.now()
	for off, end := 0, false; !end; off, end = dns.NextLabel(name, off) {
		e := r.cache.get(cacheKey{name: name[off:], kind: kindDelegation})
		if e != nil && now.Before(e.expires) {
			return name[off:], e.servers
		}
	}
	return ".", r.roots
}

// iterate resolves name from the closest known zone cut downwards, asking
// each zone's servers for one more label at a time (QNAME minimisation,
// RFC 9156) until it reaches name.
func (r *Resolver) iterate(ctx context.Context, name string, qtype uint16, depth int) (*dns.Msg, error) {
	zone, servers := r.closestDelegation(name)
	total := dns.CountLabel(name)
	labels := dns.CountLabel(zone) + 1
	for range maxSteps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		qn, qt := lastLabels(name, labels), qtype
		minimised := labels < total
		if minimised {
			qt = dns.TypeA
		}
		resp, err := r.query(ctx, servers, qn, qt)
		if err != nil {
			if minimised {
				labels = total // some servers mishandle minimised queries
				continue
			}
			return nil, err
		}
		if cut, nsNames, glue, ttl := referral(resp, zone, qn); cut != "" {
			addrs := r.nsAddrs(ctx, cut, nsNames, glue, depth)
			if len(addrs) == 0 {
				return nil, errNoServers
			}
			now := r.now()
			r.cache.put(&cacheEntry{
				key:     cacheKey{name: cut, kind: kindDelegation},
				servers: addrs,
				stored:  now,
				expires: now.Add(min(time.Duration(ttl)*time.Second, maxTTL)),
			})
			zone, servers = cut, addrs
			labels = dns.CountLabel(zone) + 1
			continue
		}
		if resp.Rcode == dns.RcodeNameError {
			// Nothing exists below a name that does not exist (RFC 8020).
			return negative(resp, zone, name, qtype), nil
		}
		if minimised {
			labels++
			continue
		}
		return r.answer(ctx, resp, zone, name, qtype, depth)
	}
	return nil, errTooDeep
}

// referral reports a delegation from zone to a child zone cut at or above
// qn: the cut, its name server names, in-bailiwick glue and the NS TTL.
func referral(resp *dns.Msg, zone, qn string) (string, []string, map[string][]netip.Addr, uint32) {
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) > 0 {
		return "", nil, nil, 0
	}
	var cut string
	var names []string
	var ttl uint32
	for _, rr := range resp.Ns {
		ns, ok := rr.(*dns.NS)
		if !ok {
			continue
		}
		owner := dns.CanonicalName(ns.Hdr.Name)
		// Only a strictly deeper cut on the way to qn is a referral; any
		// other NS set is outside the server's bailiwick and ignored.
		if owner == zone || !isSub(zone, owner) || !isSub(owner, qn) {
			continue
		}
		if cut == "" {
			cut, ttl = owner, ns.Hdr.Ttl
		}
		if owner != cut {
			continue
		}
		ttl = min(ttl, ns.Hdr.Ttl)
		names = append(names, dns.CanonicalName(ns.Ns))
	}
	if cut == "" {
		return "", nil, nil, 0
	}
	glue := make(map[string][]netip.Addr)
	for _, rr := range resp.Extra {
		owner := dns.CanonicalName(rr.Header().Name)
		if !isSub(zone, owner) { // glue from outside the server's zone is not trusted
			continue
		}
		var ip net.IP
		switch rr := rr.(type) {
		case *dns.A:
			ip = rr.A
		case *dns.AAAA:
			ip = rr.AAAA
		default:
			continue
		}
		if a, ok := netip.AddrFromSlice(ip); ok {
			glue[owner] = append(glue[owner], a.Unmap())
		}
	}
	return cut, names, glue, ttl
}

// nsAddrs finds addresses for a zone's name servers: glue first, then up to
// maxNSLookups glueless names resolved from the top.
func (r *Resolver) nsAddrs(ctx context.Context, zone string, names []string, glue map[string][]netip.Addr, depth int) []netip.Addr {
	var v4, v6 []netip.Addr
	var glueless []string
	for _, n := range names {
		addrs, ok := glue[n]
		if !ok {
			glueless = append(glueless, n)
		}
		for _, a := range addrs {
			if r.egress(a) != nil {
				continue // glue may point anywhere: the host, the tunnel, metadata
			}
			if a.Is4() {
				v4 = append(v4, a)
			} else {
				v6 = append(v6, a)
			}
		}
	}
	if len(v4)+len(v6) == 0 {
		rand.Shuffle(len(glueless), func(i, j int) { glueless[i], glueless[j] = glueless[j], glueless[i] })
		for i, n := range glueless {
			if i >= maxNSLookups || len(v4) > 0 {
				break
			}
			if isSub(zone, n) {
				continue // in-zone name server without glue: cannot be reached
			}
			m, err := r.resolveDepth(ctx, n, dns.TypeA, depth+1)
			if err != nil {
				continue
			}
			for _, rr := range m.Answer {
				if a, ok := rr.(*dns.A); ok {
					if ip, ok := netip.AddrFromSlice(a.A); ok && r.egress(ip.Unmap()) == nil {
						v4 = append(v4, ip.Unmap())
					}
				}
			}
		}
	}
	return append(v4, v6...)
}

// negative builds the cached form of NXDOMAIN or NODATA: the zone's SOA
// only, and only if it belongs to the zone asked.
func negative(resp *dns.Msg, zone, name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.Response = true
	m.Rcode = resp.Rcode
	m.Question = []dns.Question{{Name: name, Qtype: qtype, Qclass: dns.ClassINET}}
	for _, rr := range resp.Ns {
		if soa, ok := rr.(*dns.SOA); ok && isSub(zone, dns.CanonicalName(soa.Hdr.Name)) {
			m.Ns = append(m.Ns, soa)
			break
		}
	}
	return m
}

// answer extracts the records for name from a final response, following
// the CNAME chain inside it and resolving the rest of the chain from the
// top. Records off the chain or outside zone are dropped.
func (r *Resolver) answer(ctx context.Context, resp *dns.Msg, zone, name string, qtype uint16, depth int) (*dns.Msg, error) {
	if len(resp.Answer) == 0 {
		return negative(resp, zone, name, qtype), nil
	}
	m := new(dns.Msg)
	m.Response = true
	m.Question = []dns.Question{{Name: name, Qtype: qtype, Qclass: dns.ClassINET}}
	cur := name
	for range maxChain {
		var found, cname bool
		var next string
		for _, rr := range resp.Answer {
			h := rr.Header()
			if h.Class != dns.ClassINET || !strings.EqualFold(h.Name, cur) {
				continue
			}
			switch {
			case h.Rrtype == qtype || qtype == dns.TypeANY:
				m.Answer = append(m.Answer, rr)
				found = true
			case h.Rrtype == dns.TypeCNAME && !cname:
				m.Answer = append(m.Answer, rr)
				cname = true
				next = dns.CanonicalName(rr.(*dns.CNAME).Target)
			}
		}
		if found || !cname {
			if len(m.Answer) == 0 {
				return nil, errLame // answers, but none about the question
			}
			return m, nil
		}
		cur = next
		if !isSub(zone, cur) || !hasOwner(resp.Answer, cur) {
			// The target is outside this server's authority: ask its own.
			sub, err := r.resolveDepth(ctx, cur, qtype, depth+1)
			if err != nil {
				return nil, err
			}
			m.Rcode = sub.Rcode
			m.Answer = append(m.Answer, sub.Answer...)
			m.Ns = sub.Ns
			return m, nil
		}
	}
	return nil, errTooDeep
}

func hasOwner(rrs []dns.RR, name string) bool {
	for _, rr := range rrs {
		if strings.EqualFold(rr.Header().Name, name) {
			return true
		}
	}
	return false
}

// query asks servers (in random order) one question and returns the first
// usable response, retrying over TCP when a response is truncated.
func (r *Resolver) query(ctx context.Context, servers []netip.Addr, name string, qtype uint16) (*dns.Msg, error) {
	servers = slices.DeleteFunc(slices.Clone(servers), func(a netip.Addr) bool { return r.egress(a) != nil })
	if len(servers) == 0 {
		return nil, errNoServers
	}
	order := rand.Perm(len(servers))
	lastErr := errNoServers
	for i, idx := range order {
		if i >= 4 {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		addr := netip.AddrPortFrom(servers[idx], r.port)
		resp, err := r.exchange(ctx, "udp", addr, name, qtype)
		if err == nil && resp.Truncated {
			resp, err = r.exchange(ctx, "tcp", addr, name, qtype)
		}
		if err != nil {
			lastErr = err
			continue
		}
		switch resp.Rcode {
		case dns.RcodeSuccess, dns.RcodeNameError:
			return resp, nil
		}
		lastErr = errLame
	}
	return nil, lastErr
}

// exchange sends one query with a random ID and 0x20 case, and checks the
// response matches. Over UDP it goes out of a pooled random-port socket
// (see udpPool); over TCP on a fresh connection.
func (r *Resolver) exchange(ctx context.Context, network string, addr netip.AddrPort, name string, qtype uint16) (*dns.Msg, error) {
	if err := r.egress(addr.Addr()); err != nil {
		return nil, fmt.Errorf("upstream refused: %w", err)
	}
	q := newQuery(randomCase(name), qtype, false)
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var resp *dns.Msg
	var err error
	if network == "udp" {
		pool := r.udp4
		if !addr.Addr().Is4() {
			pool = r.udp6
		}
		var s *poolSocket
		if s, err = pool.acquire(); err == nil {
			resp, err = s.exchange(ctx, addr, q)
		}
	} else {
		c := &dns.Client{Net: network, UDPSize: EDNSBufferSize, Timeout: r.timeout}
		resp, _, err = c.ExchangeContext(ctx, q, addr.String())
	}
	if err != nil {
		return nil, fmt.Errorf("exchange: %w", err)
	}
	if !matches(q, resp) {
		return nil, errMismatch
	}
	return resp, nil
}
