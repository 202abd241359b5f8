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
	q.SetEdns0(EDNSBufferSize, true) // DO: the signatures are wanted for validation
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
	m.AuthenticatedData = resp.AuthenticatedData // see Config.Forward
	m.Question = []dns.Question{{Name: name, Qtype: qtype, Qclass: dns.ClassINET}}
	for _, rr := range resp.Answer {
		m.Answer = append(m.Answer, canonicalCase(rr))
	}
	for _, rr := range resp.Ns {
		if rr.Header().Rrtype != dns.TypeOPT {
			m.Ns = append(m.Ns, canonicalCase(rr))
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
		m, err := r.lookup(ctx, name, qtype, depth, true)
		if err != nil {
			return nil, err
		}
		r.storeAnswer(name, qtype, m)
		return m, nil
	})
	if err != nil {
		var b *bogusError
		if errors.As(err, &b) {
			// Never replaced by a stale answer: the data may be forged.
			r.log.Debug("validation failed", "name", redact.Name(name), "code", b.code)
			return nil, fmt.Errorf("%w: %w", ErrServFail, err)
		}
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

// lookup asks the forwarders or recurses. With validate set, the
// answer's AD bit says whether it is secure; bogus data is a
// *bogusError. Without, the answer comes as received, for the keys
// validation itself looks up.
func (r *Resolver) lookup(ctx context.Context, name string, qtype uint16, depth int, validate bool) (*dns.Msg, error) {
	if len(r.forward) > 0 {
		return r.forwardQuery(ctx, name, qtype)
	}
	return r.iterate(ctx, name, qtype, depth, validate)
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
	case errors.Is(err, errBogus):
		return "bogus"
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
func (r *Resolver) iterate(ctx context.Context, name string, qtype uint16, depth int, validate bool) (*dns.Msg, error) {
	// A DS record lives on the parent's side of the cut (RFC 4035
	// section 3.1.4.1): the servers asked are those above name.
	zone, servers := r.closestDelegation(name)
	if qtype == dns.TypeDS && name != "." {
		zone, servers = r.closestDelegation(parent(name))
	}
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
			if qtype == dns.TypeDS && cut == name {
				return nil, errLame // the parent must answer for its DS
			}
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
			m := negative(resp, zone, name, qtype)
			return r.validated(ctx, m, zone, name, qtype, depth, validate)
		}
		if minimised {
			labels++
			continue
		}
		return r.answer(ctx, resp, zone, name, qtype, depth, validate)
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

// negative builds the cached form of NXDOMAIN or NODATA: the zone's SOA,
// and the NSEC or NSEC3 records proving the denial, with their
// signatures; nothing from outside the zone asked.
func negative(resp *dns.Msg, zone, name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.Response = true
	m.Rcode = resp.Rcode
	m.Question = []dns.Question{{Name: name, Qtype: qtype, Qclass: dns.ClassINET}}
	var soa bool
	for _, rr := range resp.Ns {
		if !isSub(zone, dns.CanonicalName(rr.Header().Name)) {
			continue
		}
		switch rr := rr.(type) {
		case *dns.SOA:
			if !soa {
				m.Ns = append(m.Ns, canonicalCase(rr))
			}
			soa = true
		case *dns.NSEC, *dns.NSEC3:
			m.Ns = append(m.Ns, canonicalCase(rr))
		case *dns.RRSIG:
			switch rr.TypeCovered {
			case dns.TypeSOA, dns.TypeNSEC, dns.TypeNSEC3:
				m.Ns = append(m.Ns, canonicalCase(rr))
			}
		}
	}
	return m
}

// validated sets m's AD bit when validation shows it secure, or returns
// the bogus error, with m for clients that set CD.
func (r *Resolver) validated(ctx context.Context, m *dns.Msg, zone, name string, qtype uint16, depth int, validate bool) (*dns.Msg, error) {
	if !validate {
		return m, nil
	}
	secure, err := r.validate(ctx, m, zone, name, qtype, depth)
	var b *bogusError
	if errors.As(err, &b) {
		return nil, &bogusError{code: b.code, reason: b.reason, msg: m}
	}
	if err != nil {
		return nil, err
	}
	m.AuthenticatedData = secure
	return m, nil
}

// canonicalCase lower-cases rr's owner name and the names in its data
// that DNSSEC's canonical form lower-cases too (RFC 4034 section 6.2), so
// that no server's case, nor the resolver's own 0x20 pattern compressed
// into them, reaches a client; signatures still verify. It changes rr.
func canonicalCase(rr dns.RR) dns.RR {
	h := rr.Header()
	h.Name = dns.CanonicalName(h.Name)
	switch rr := rr.(type) {
	case *dns.NS:
		rr.Ns = dns.CanonicalName(rr.Ns)
	case *dns.CNAME:
		rr.Target = dns.CanonicalName(rr.Target)
	case *dns.DNAME:
		rr.Target = dns.CanonicalName(rr.Target)
	case *dns.PTR:
		rr.Ptr = dns.CanonicalName(rr.Ptr)
	case *dns.MX:
		rr.Mx = dns.CanonicalName(rr.Mx)
	case *dns.SRV:
		rr.Target = dns.CanonicalName(rr.Target)
	case *dns.SOA:
		rr.Ns, rr.Mbox = dns.CanonicalName(rr.Ns), dns.CanonicalName(rr.Mbox)
	case *dns.RRSIG:
		rr.SignerName = dns.CanonicalName(rr.SignerName)
	}
	return rr
}

// answer extracts the records for name from a final response, following
// the CNAME chain inside it, with the signatures over them; checks them
// as the zone's data; and resolves the rest of the chain from the top.
// Records off the chain or outside zone are dropped.
func (r *Resolver) answer(ctx context.Context, resp *dns.Msg, zone, name string, qtype uint16, depth int, validate bool) (*dns.Msg, error) {
	if len(resp.Answer) == 0 {
		return r.validated(ctx, negative(resp, zone, name, qtype), zone, name, qtype, depth, validate)
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
				m.Answer = append(m.Answer, canonicalCase(rr))
				found = true
			case h.Rrtype == dns.TypeCNAME && !cname:
				m.Answer = append(m.Answer, canonicalCase(rr))
				cname = true
				next = dns.CanonicalName(rr.(*dns.CNAME).Target)
			}
		}
		if found || cname {
			m.Answer = append(m.Answer, sigsOver(resp.Answer, cur, qtype)...)
		}
		if found || !cname {
			if len(m.Answer) == 0 {
				return nil, errLame // answers, but none about the question
			}
			m.Ns = wildcardProof(resp, zone)
			return r.validated(ctx, m, zone, name, qtype, depth, validate)
		}
		cur = next
		if !isSub(zone, cur) || !hasOwner(resp.Answer, cur) {
			// The target is outside this server's authority: ask its own.
			if _, err := r.validated(ctx, m, zone, name, qtype, depth, validate); err != nil {
				return nil, err
			}
			sub, err := r.resolveDepth(ctx, cur, qtype, depth+1)
			if err != nil {
				return nil, err
			}
			m.AuthenticatedData = m.AuthenticatedData && sub.AuthenticatedData
			m.Rcode = sub.Rcode
			m.Answer = append(m.Answer, sub.Answer...)
			m.Ns = sub.Ns
			return m, nil
		}
	}
	return nil, errTooDeep
}

// wildcardProof keeps the NSEC and NSEC3 records of a positive
// response, and their signatures: a wildcard answer's proof that the name
// itself does not exist.
func wildcardProof(resp *dns.Msg, zone string) []dns.RR {
	var out []dns.RR
	for _, rr := range resp.Ns {
		if !isSub(zone, dns.CanonicalName(rr.Header().Name)) {
			continue
		}
		switch rr := rr.(type) {
		case *dns.NSEC, *dns.NSEC3:
			out = append(out, canonicalCase(rr))
		case *dns.RRSIG:
			if rr.TypeCovered == dns.TypeNSEC || rr.TypeCovered == dns.TypeNSEC3 {
				out = append(out, canonicalCase(rr))
			}
		}
	}
	return out
}

// sigsOver returns the RRSIGs in rrs owned by owner covering qtype or
// CNAME (every RRSIG when owner is empty).
func sigsOver(rrs []dns.RR, owner string, qtype uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		sig, ok := rr.(*dns.RRSIG)
		if !ok {
			continue
		}
		if owner == "" || strings.EqualFold(sig.Hdr.Name, owner) &&
			(sig.TypeCovered == qtype || sig.TypeCovered == dns.TypeCNAME || qtype == dns.TypeANY) {
			out = append(out, canonicalCase(sig))
		}
	}
	return out
}

// parent returns the name one label up from name; the root's is itself.
func parent(name string) string {
	if i, end := dns.NextLabel(name, 0); !end {
		return name[i:]
	}
	return "."
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
