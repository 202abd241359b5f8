package resolver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// DNSSEC validation (RFC 4033-4035) follows the chain of trust from the
// trust anchor down: a zone's DNSKEY set is secure when a key matching a
// DS record of the parent (itself validated with the parent's keys)
// signs it; a zone whose parent proves it has no DS is insecure, and so
// is everything below it. The cryptography is miekg/dns's: RRSIG.Verify,
// RRSIG.ValidityPeriod, DNSKEY.ToDS and the NSEC3 hashing in denial.go.

// bogusTTL is how long a zone whose keys fail validation is remembered
// as bogus, so that a broken zone costs its crypto once a minute at most.
const bogusTTL = time.Minute

// errBogus is what a bogus answer's error wraps.
var errBogus = errors.New("dnssec validation failed")

// bogusError is an answer or a key set that failed validation. code is
// its RFC 8914 extended error; msg, when known, is the data as received,
// for clients that set CD.
type bogusError struct {
	code   uint16
	reason string
	msg    *dns.Msg
}

func (e *bogusError) Error() string { return "dnssec: " + e.reason }
func (e *bogusError) Unwrap() error { return errBogus }

func bogus(code uint16, format string, args ...any) *bogusError {
	return &bogusError{code: code, reason: fmt.Sprintf(format, args...)}
}

// zoneKeys is the validated state of one zone: its keys when secure.
type zoneKeys struct {
	secure bool
	keys   []*dns.DNSKEY
	err    *bogusError // set when the zone's keys are bogus
}

// supportedAlgorithm reports whether miekg/dns can verify signatures of
// alg. DS and DNSKEY records of other algorithms are treated as absent,
// which makes a zone signed only with them insecure (RFC 4035 section 5.2).
func supportedAlgorithm(alg uint8) bool {
	switch alg {
	case dns.RSASHA1, dns.RSASHA1NSEC3SHA1, dns.RSASHA256, dns.RSASHA512,
		dns.ECDSAP256SHA256, dns.ECDSAP384SHA384, dns.ED25519:
		return true
	}
	return false
}

func supportedDigest(t uint8) bool {
	return t == dns.SHA1 || t == dns.SHA256 || t == dns.SHA384
}

// keysFor returns the validated state of zone's keys, from the cache or
// by walking up to the trust anchor.
func (r *Resolver) keysFor(ctx context.Context, zone string, depth int) (*zoneKeys, error) {
	k := cacheKey{name: zone, kind: kindKeys}
	if e := r.cache.get(k); e != nil && r.now().Before(e.expires) {
		return e.keys, nil
	}
	if depth > maxDepth {
		return nil, errTooDeep
	}
	v, err, _ := r.flight.Do("keys/"+zone, func() (any, error) {
		zk, ttl, err := r.fetchKeys(ctx, zone, depth)
		if err != nil {
			return nil, err
		}
		now := r.now()
		r.cache.put(&cacheEntry{key: k, keys: zk, stored: now, expires: now.Add(ttl)})
		return zk, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*zoneKeys), nil
}

// fetchKeys works out zone's keys and how long the result holds.
func (r *Resolver) fetchKeys(ctx context.Context, zone string, depth int) (*zoneKeys, time.Duration, error) {
	ttl := maxTTL
	var ds []*dns.DS
	var anchorKeys []*dns.DNSKEY
	switch {
	case zone == r.anchor.zone:
		ds, anchorKeys = r.anchor.ds, r.anchor.keys
	case !isSub(r.anchor.zone, zone):
		return &zoneKeys{}, ttl, nil // outside the anchor's tree: nothing to validate from
	default:
		m, err := r.resolveDepth(ctx, zone, dns.TypeDS, depth+1)
		var b *bogusError
		if errors.As(err, &b) {
			return &zoneKeys{err: b}, bogusTTL, nil
		}
		if err != nil {
			return nil, 0, err
		}
		ttl = max(msgTTL(m), time.Second)
		if !m.AuthenticatedData {
			return &zoneKeys{}, ttl, nil // the parent is insecure
		}
		for _, rr := range m.Answer {
			if d, ok := rr.(*dns.DS); ok && dns.CanonicalName(d.Hdr.Name) == zone {
				ds = append(ds, d)
			}
		}
		// No DS makes a zone insecure only at a proven delegation: any
		// name has no DS, and a forger could name one as a signer.
		if len(ds) == 0 && !provenDelegation(m.Ns, zone) {
			return &zoneKeys{err: bogus(dns.ExtendedErrorCodeDNSKEYMissing, "%s is not a zone cut", zone)}, bogusTTL, nil
		}
	}
	ds = filterDS(ds)
	if len(ds)+len(anchorKeys) == 0 {
		return &zoneKeys{}, ttl, nil // no DS we can use: insecure delegation
	}
	m, err := r.lookup(ctx, zone, dns.TypeDNSKEY, depth+1, false)
	if err != nil {
		return nil, 0, err
	}
	var keys []*dns.DNSKEY
	var keyset, sigs []dns.RR
	for _, rr := range m.Answer {
		if dns.CanonicalName(rr.Header().Name) != zone {
			continue
		}
		switch rr := rr.(type) {
		case *dns.DNSKEY:
			keys = append(keys, rr)
			keyset = append(keyset, rr)
		case *dns.RRSIG:
			if rr.TypeCovered == dns.TypeDNSKEY {
				sigs = append(sigs, rr)
			}
		}
	}
	// The key set must be signed by a key the parent's DS (or the anchor)
	// vouches for.
	var trusted []*dns.DNSKEY
	for _, k := range keys {
		if matchesAnchor(k, ds, anchorKeys) {
			trusted = append(trusted, k)
		}
	}
	if len(trusted) == 0 {
		return &zoneKeys{err: bogus(dns.ExtendedErrorCodeDNSKEYMissing, "no DNSKEY of %s matches its DS", zone)}, bogusTTL, nil
	}
	sig, berr := r.verifyRRset(keyset, sigs, zone, trusted)
	if berr != nil {
		berr.reason = "DNSKEY set of " + zone + ": " + berr.reason
		return &zoneKeys{err: berr}, bogusTTL, nil
	}
	ttl = min(ttl, r.sigTTL(keyset, sig))
	return &zoneKeys{secure: true, keys: keys}, ttl, nil
}

// filterDS keeps the DS records whose algorithm and digest type can be
// checked.
func filterDS(ds []*dns.DS) []*dns.DS {
	var out []*dns.DS
	for _, d := range ds {
		if supportedAlgorithm(d.Algorithm) && supportedDigest(d.DigestType) {
			out = append(out, d)
		}
	}
	return out
}

// matchesAnchor reports whether k is vouched for by one of ds or is one
// of keys.
func matchesAnchor(k *dns.DNSKEY, ds []*dns.DS, keys []*dns.DNSKEY) bool {
	for _, a := range keys {
		if a.Algorithm == k.Algorithm && a.PublicKey == k.PublicKey && a.Flags == k.Flags {
			return true
		}
	}
	tag := k.KeyTag()
	for _, d := range ds {
		if d.KeyTag != tag || d.Algorithm != k.Algorithm {
			continue
		}
		if got := k.ToDS(d.DigestType); got != nil && strings.EqualFold(got.Digest, d.Digest) {
			return true
		}
	}
	return false
}

// verifyRRset checks that one of sigs, made by signer with one of keys,
// signs rrset and is within its validity period now. It returns the
// signature that did.
func (r *Resolver) verifyRRset(rrset, sigs []dns.RR, signer string, keys []*dns.DNSKEY) (*dns.RRSIG, *bogusError) {
	if len(sigs) == 0 {
		return nil, bogus(dns.ExtendedErrorCodeRRSIGsMissing, "no signature")
	}
	now := r.now()
	code := uint16(dns.ExtendedErrorCodeDNSBogus)
	for _, rr := range sigs {
		sig := rr.(*dns.RRSIG)
		if dns.CanonicalName(sig.SignerName) != signer {
			continue
		}
		for _, k := range keys {
			if k.KeyTag() != sig.KeyTag || k.Algorithm != sig.Algorithm || !supportedAlgorithm(k.Algorithm) {
				continue
			}
			if !sig.ValidityPeriod(now) {
				code = dns.ExtendedErrorCodeSignatureExpired
				if int64(sig.Inception)-now.Unix() > 0 && int64(sig.Inception)-now.Unix() < 1<<31 {
					code = dns.ExtendedErrorCodeSignatureNotYetValid
				}
				continue
			}
			key := sigKey(sig, k, rrset)
			if r.sigs.has(key) {
				return sig, nil
			}
			r.verifications.Add(1)
			if sig.Verify(k, rrset) == nil {
				r.sigs.add(key)
				return sig, nil
			}
		}
	}
	return nil, bogus(code, "%s signature of %s", dns.ExtendedErrorCodeToString[code], rrset[0].Header().Name)
}

// sigTTL is how long rrset, signed by sig, may be cached: no longer than
// the signature's original TTL nor past its expiry (RFC 4035 section
// 5.3.3). It clamps the records' TTLs to that too.
func (r *Resolver) sigTTL(rrset []dns.RR, sig *dns.RRSIG) time.Duration {
	ttl := sig.OrigTtl
	if left := int64(sig.Expiration) - r.now().Unix(); left < int64(ttl) {
		ttl = uint32(max(left, 0))
	}
	for _, rr := range rrset {
		h := rr.Header()
		h.Ttl = min(h.Ttl, ttl)
	}
	sig.Hdr.Ttl = min(sig.Hdr.Ttl, ttl)
	return time.Duration(ttl) * time.Second
}

// rrset is the records of one owner and type, and the signatures over
// them.
type rrset struct {
	owner string // canonical
	rtype uint16
	rrs   []dns.RR
	sigs  []dns.RR
}

// rrsets groups a section's records by owner and type.
func rrsets(section []dns.RR) []*rrset {
	var out []*rrset
	find := func(owner string, t uint16) *rrset {
		for _, s := range out {
			if s.owner == owner && s.rtype == t {
				return s
			}
		}
		s := &rrset{owner: owner, rtype: t}
		out = append(out, s)
		return s
	}
	for _, rr := range section {
		owner := dns.CanonicalName(rr.Header().Name)
		if sig, ok := rr.(*dns.RRSIG); ok {
			s := find(owner, sig.TypeCovered)
			s.sigs = append(s.sigs, rr)
			continue
		}
		s := find(owner, rr.Header().Rrtype)
		s.rrs = append(s.rrs, rr)
	}
	return out
}

// validate checks m, which the servers of zone gave for name and qtype,
// and reports whether it is secure. An insecure zone's data is returned
// as it is; a secure zone's data must be signed, and its negative
// answers proven by NSEC or NSEC3 records. Bogus data is an error.
func (r *Resolver) validate(ctx context.Context, m *dns.Msg, zone, name string, qtype uint16, depth int) (bool, error) {
	if r.anchor == nil {
		return false, nil
	}
	zk, err := r.keysFor(ctx, zone, depth)
	if err != nil {
		return false, err
	}
	if zk.err != nil {
		return false, zk.err
	}
	if !zk.secure {
		return false, nil
	}
	secure := true
	target := chainEnd(m.Answer, name)
	check := func(s *rrset, authority bool) error {
		if len(s.rrs) == 0 {
			return nil // signatures of records not kept
		}
		if len(s.sigs) == 0 && (!authority || isSub(s.owner, target)) {
			// Unsigned data of a secure zone is bogus, unless it belongs to
			// an insecure child zone that the same servers serve.
			insecure, err := r.insecureBelow(ctx, zone, s.owner, depth)
			if err != nil {
				return err
			}
			if insecure {
				secure = false
				return nil
			}
		}
		signer := zone
		for _, rr := range s.sigs {
			if sn := dns.CanonicalName(rr.(*dns.RRSIG).SignerName); isSub(zone, sn) && isSub(sn, s.owner) {
				signer = sn // a child zone served by the same servers
				break
			}
		}
		keys := zk
		if signer != zone {
			if keys, err = r.keysFor(ctx, signer, depth); err != nil {
				return err
			}
			if keys.err != nil {
				return keys.err
			}
			if !keys.secure {
				secure = false
				return nil
			}
		}
		sig, berr := r.verifyRRset(s.rrs, s.sigs, signer, keys.keys)
		if berr != nil {
			return berr
		}
		r.sigTTL(s.rrs, sig)
		if labels := dns.CountLabel(strings.TrimPrefix(s.owner, "*.")); int(sig.Labels) < labels {
			// A wildcard expansion: the name itself must be proven absent.
			if !r.provesNoName(m.Ns, s.owner, int(sig.Labels)) {
				return bogus(dns.ExtendedErrorCodeNSECMissing, "wildcard answer for %s without proof", s.owner)
			}
		}
		return nil
	}
	for i, sec := range [][]dns.RR{m.Answer, m.Ns} {
		for _, s := range rrsets(sec) {
			if err := check(s, i == 1); err != nil {
				return false, err
			}
		}
	}
	if !secure {
		return false, nil // data of an insecure zone: no proof to check
	}
	if len(m.Answer) == 0 || m.Rcode == dns.RcodeNameError {
		ok, err := r.proveDenial(m, zone, name, qtype)
		if err != nil {
			return false, err
		}
		secure = secure && ok
	}
	return secure, nil
}

// insecureBelow reports whether a zone cut below zone, on the way to
// owner, is a proven delegation without DS: an insecure zone served by
// the same servers as its secure parent, which answer for it without a
// referral.
func (r *Resolver) insecureBelow(ctx context.Context, zone, owner string, depth int) (bool, error) {
	for n := dns.CountLabel(zone) + 1; n <= dns.CountLabel(owner); n++ {
		zk, err := r.keysFor(ctx, lastLabels(owner, n), depth)
		if err != nil {
			return false, err
		}
		switch {
		case zk.err != nil:
			continue // not a zone cut
		case zk.secure:
			return false, nil // a signed zone: its data must be signed
		default:
			return true, nil
		}
	}
	return false, nil
}

// provenDelegation reports whether the validated denial records ns of a
// DS query for name show name to be a delegation: an NSEC or NSEC3 at
// name listing NS but neither SOA nor DS, or an NSEC3 opt-out span over
// it (RFC 5155 section 8.6).
func provenDelegation(ns []dns.RR, name string) bool {
	cut := func(types []uint16) bool {
		return hasType(types, dns.TypeNS) && !hasType(types, dns.TypeSOA) && !hasType(types, dns.TypeDS)
	}
	var nsec3 []*dns.NSEC3
	for _, rr := range ns {
		switch rr := rr.(type) {
		case *dns.NSEC:
			if dns.CanonicalName(rr.Hdr.Name) == name {
				return cut(rr.TypeBitMap)
			}
		case *dns.NSEC3:
			if rr.Match(name) {
				return cut(rr.TypeBitMap)
			}
			nsec3 = append(nsec3, rr)
		}
	}
	for n := dns.CountLabel(name) - 1; n >= 0; n-- {
		ce := lastLabels(name, n)
		for _, rr := range nsec3 {
			if rr.Match(ce) {
				cover := nsec3Covering(nsec3, lastLabels(name, n+1))
				return cover != nil && cover.Flags&1 == 1
			}
		}
	}
	return false
}

// maxVerified bounds the signatures remembered as verified.
const maxVerified = 20_000

// verified remembers the signatures already verified, by everything the
// verification covered: the key, the RRSIG's fields and the records'
// data. Answers synthesised from one wildcard, and the NSEC records that
// many negative answers share, then cost their cryptography once. When
// full it starts again, which is cheaper than an LRU and as good for a
// cache that only saves work.
type verified struct {
	mu   sync.Mutex
	keys map[string]struct{}
}

func (v *verified) has(k string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, ok := v.keys[k]
	return ok
}

func (v *verified) add(k string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.keys == nil || len(v.keys) >= maxVerified {
		v.keys = make(map[string]struct{})
	}
	v.keys[k] = struct{}{}
}

// sigKey identifies the verification of sig by k over rrset: the data
// signed (RFC 4034 section 3.1.8.1), with a wildcard expansion's owner
// given back as the wildcard, and the key.
func sigKey(sig *dns.RRSIG, k *dns.DNSKEY, rrset []dns.RR) string {
	var b strings.Builder
	owner := dns.CanonicalName(rrset[0].Header().Name)
	if labels := dns.CountLabel(owner); int(sig.Labels) < labels {
		owner = "*." + lastLabels(owner, int(sig.Labels))
	}
	fmt.Fprintf(&b, "%d %d %s %d %d %d %d %d %s %s %s|", k.Algorithm, k.Flags, k.PublicKey, sig.TypeCovered,
		sig.Labels, sig.OrigTtl, sig.Expiration, sig.Inception, dns.CanonicalName(sig.SignerName), sig.Signature, owner)
	data := make([]string, 0, len(rrset))
	for _, rr := range rrset {
		s := rr.String()
		data = append(data, s[len(rr.Header().String()):]) // not lower-cased: TXT data is case-sensitive
	}
	slices.Sort(data)
	b.WriteString(strings.Join(data, "|"))
	return b.String()
}
