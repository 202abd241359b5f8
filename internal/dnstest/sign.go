package dnstest

import (
	"crypto"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"veil/internal/dnsname"
)

// A Key is a DNSSEC signing key of a test zone (ECDSA P-256, the
// algorithm most signed zones use, and fast to make).
type Key struct {
	DNSKEY *dns.DNSKEY
	signer crypto.Signer
}

// NewKey makes a key for zone: a key-signing key (flags 257) or a
// zone-signing key (256).
func NewKey(zone string, ksk bool) (*Key, error) {
	k := &dns.DNSKEY{
		Hdr:       dns.RR_Header{Name: dns.CanonicalName(zone), Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags:     dns.ZONE,
		Protocol:  3,
		Algorithm: dns.ECDSAP256SHA256,
	}
	if ksk {
		k.Flags |= dns.SEP
	}
	priv, err := k.Generate(256)
	if err != nil {
		return nil, fmt.Errorf("generating key: %w", err)
	}
	return &Key{DNSKEY: k, signer: priv.(crypto.Signer)}, nil
}

// DS returns the DS record for the key, SHA-256, for the parent zone.
func (k *Key) DS() *dns.DS { return k.DNSKEY.ToDS(dns.SHA256) }

// NSEC3 selects NSEC3 denial (RFC 5155) for Signing.
type NSEC3 struct {
	Iterations uint16
	Salt       string // hex; empty for none, as RFC 9276 advises
	OptOut     bool
}

// Signing says how Sign signs a zone.
type Signing struct {
	// Keys are the zone's published DNSKEYs.
	Keys []*Key
	// KeySigners sign the DNSKEY set; nil means all of Keys.
	KeySigners []*Key
	// DataSigners sign every other RRset; nil means all of Keys.
	DataSigners []*Key
	// Inception and Expiration bound the signatures' validity.
	Inception, Expiration time.Time
	// NSEC3, when set, builds an NSEC3 chain instead of NSEC.
	NSEC3 *NSEC3
}

// Sign returns records, the records of zone apex, with the DNSKEY set,
// an SOA if there was none, the NSEC or NSEC3 chain and the RRSIGs over
// every authoritative RRset added: what a signed zone file holds.
// Delegation NS records and glue stay unsigned and out of the chain.
func Sign(apex string, records []dns.RR, s Signing) ([]dns.RR, error) {
	apex = dns.CanonicalName(apex)
	rrs := slices.Clone(records)
	z := &Zone{apexes: []string{apex}}
	hasSOA := false
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeSOA && dns.CanonicalName(rr.Header().Name) == apex {
			hasSOA = true
		}
	}
	if !hasSOA {
		rrs = append(rrs, z.soa(apex)...)
	}
	for _, k := range s.Keys {
		rrs = append(rrs, k.DNSKEY)
	}
	// Zone cuts below the apex: their NS and everything under them is
	// not the zone's own data, except the DS at the cut.
	var cuts []string
	for _, rr := range rrs {
		if owner := dns.CanonicalName(rr.Header().Name); rr.Header().Rrtype == dns.TypeNS && owner != apex {
			cuts = append(cuts, owner)
		}
	}
	below := func(owner string) (cut string, under bool) {
		for _, c := range cuts {
			if dns.IsSubDomain(c, owner) {
				return c, true
			}
		}
		return "", false
	}
	// Group the authoritative RRsets; collect the chain's names and types.
	type set struct {
		owner string
		rtype uint16
		rrs   []dns.RR
	}
	var sets []*set
	types := map[string][]uint16{}
	for _, rr := range rrs {
		owner := dns.CanonicalName(rr.Header().Name)
		t := rr.Header().Rrtype
		if cut, under := below(owner); under && (owner != cut || (t != dns.TypeNS && t != dns.TypeDS)) {
			continue // glue
		}
		if !slices.Contains(types[owner], t) {
			types[owner] = append(types[owner], t)
		}
		if cut, _ := below(owner); cut == owner && t == dns.TypeNS {
			continue // the delegation's NS is the child's, unsigned here
		}
		i := slices.IndexFunc(sets, func(x *set) bool { return x.owner == owner && x.rtype == t })
		if i < 0 {
			sets = append(sets, &set{owner: owner, rtype: t})
			i = len(sets) - 1
		}
		sets[i].rrs = append(sets[i].rrs, rr)
	}
	// Empty non-terminals are in the chain too (with no types).
	for owner := range types {
		for n := parent(owner); n != apex && dns.IsSubDomain(apex, n); n = parent(n) {
			if _, ok := types[n]; !ok {
				types[n] = nil
			}
		}
	}
	names := make([]string, 0, len(types))
	for n := range types {
		names = append(names, n)
	}
	slices.SortFunc(names, dnsname.Compare)
	minTTL := uint32(120) // the SOA's negative TTL
	var chain []dns.RR
	if s.NSEC3 == nil {
		for i, n := range names {
			bitmap := append(slices.Clone(types[n]), dns.TypeNSEC, dns.TypeRRSIG)
			slices.Sort(bitmap)
			chain = append(chain, &dns.NSEC{
				Hdr:        dns.RR_Header{Name: n, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: minTTL},
				NextDomain: names[(i+1)%len(names)],
				TypeBitMap: bitmap,
			})
		}
	} else {
		p := s.NSEC3
		type hashed struct {
			hash  string
			types []uint16
		}
		var hs []hashed
		for _, n := range names {
			_, under := below(n)
			if p.OptOut && under && !slices.Contains(types[n], dns.TypeDS) {
				continue // an insecure delegation, skipped by opt-out
			}
			bitmap := slices.Clone(types[n])
			if len(bitmap) > 0 && (!under || slices.Contains(types[n], dns.TypeDS)) {
				bitmap = append(bitmap, dns.TypeRRSIG)
			}
			if n == apex {
				bitmap = append(bitmap, dns.TypeNSEC3PARAM)
			}
			slices.Sort(bitmap)
			hs = append(hs, hashed{dns.HashName(n, dns.SHA1, p.Iterations, p.Salt), bitmap})
		}
		slices.SortFunc(hs, func(a, b hashed) int { return strings.Compare(a.hash, b.hash) })
		var flags uint8
		if p.OptOut {
			flags = 1
		}
		for i, h := range hs {
			chain = append(chain, &dns.NSEC3{
				Hdr:        dns.RR_Header{Name: strings.ToLower(h.hash) + "." + apex, Rrtype: dns.TypeNSEC3, Class: dns.ClassINET, Ttl: minTTL},
				Hash:       dns.SHA1,
				Flags:      flags,
				Iterations: p.Iterations,
				Salt:       p.Salt,
				HashLength: 20,
				NextDomain: hs[(i+1)%len(hs)].hash,
				TypeBitMap: h.types,
			})
		}
		param := &dns.NSEC3PARAM{
			Hdr:  dns.RR_Header{Name: apex, Rrtype: dns.TypeNSEC3PARAM, Class: dns.ClassINET, Ttl: 0},
			Hash: dns.SHA1, Iterations: p.Iterations, Salt: p.Salt,
		}
		rrs = append(rrs, param)
		sets = append(sets, &set{owner: apex, rtype: dns.TypeNSEC3PARAM, rrs: []dns.RR{param}})
	}
	for _, rr := range chain {
		sets = append(sets, &set{owner: rr.Header().Name, rtype: rr.Header().Rrtype, rrs: []dns.RR{rr}})
	}
	rrs = append(rrs, chain...)
	keySigners, dataSigners := s.KeySigners, s.DataSigners
	if keySigners == nil {
		keySigners = s.Keys
	}
	if dataSigners == nil {
		dataSigners = s.Keys
	}
	for _, st := range sets {
		signers := dataSigners
		if st.rtype == dns.TypeDNSKEY {
			signers = keySigners
		}
		for _, k := range signers {
			sig := &dns.RRSIG{
				Hdr:        dns.RR_Header{Name: st.rrs[0].Header().Name, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: st.rrs[0].Header().Ttl},
				Inception:  uint32(s.Inception.Unix()),
				Expiration: uint32(s.Expiration.Unix()),
				KeyTag:     k.DNSKEY.KeyTag(),
				SignerName: apex,
				Algorithm:  k.DNSKEY.Algorithm,
			}
			if err := sig.Sign(k.signer, st.rrs); err != nil {
				return nil, fmt.Errorf("signing %s %s: %w", st.owner, dns.TypeToString[st.rtype], err)
			}
			rrs = append(rrs, sig)
		}
	}
	return rrs, nil
}
