package resolver

import (
	"slices"
	"strings"

	"github.com/miekg/dns"

	"veil/internal/dnsname"
)

// maxNSEC3Iterations is RFC 9276's limit: a zone using more additional
// iterations gets its negative answers treated as insecure (section 3.2).
const maxNSEC3Iterations = 150

// proveDenial checks the NSEC or NSEC3 proof of a negative answer m (a
// NXDOMAIN or NODATA for name, possibly after a CNAME chain inside m),
// whose records validate has already checked. It reports whether the
// denial is secure; insecure is an NSEC3 opt-out span or a zone beyond
// RFC 9276's iteration limit. A missing proof is bogus.
func (r *Resolver) proveDenial(m *dns.Msg, zone, name string, qtype uint16) (bool, error) {
	target := chainEnd(m.Answer, name)
	var nsec []*dns.NSEC
	var nsec3 []*dns.NSEC3
	for _, rr := range m.Ns {
		switch rr := rr.(type) {
		case *dns.NSEC:
			nsec = append(nsec, rr)
		case *dns.NSEC3:
			nsec3 = append(nsec3, rr)
		}
	}
	nx := m.Rcode == dns.RcodeNameError
	if len(nsec) > 0 {
		if (nx && nsecNXDOMAIN(nsec, target)) || (!nx && nsecNODATA(nsec, target, qtype)) {
			return true, nil
		}
	}
	if len(nsec3) > 0 {
		for _, n := range nsec3 {
			if n.Iterations > maxNSEC3Iterations || n.Hash != dns.SHA1 {
				return false, nil
			}
		}
		secure, ok := nsec3Denial(nsec3, zone, target, qtype, nx)
		if ok {
			return secure, nil
		}
	}
	return false, bogus(dns.ExtendedErrorCodeNSECMissing, "no proof of %s for %s", map[bool]string{true: "NXDOMAIN", false: "NODATA"}[nx], target)
}

// chainEnd follows the CNAMEs of answer from name.
func chainEnd(answer []dns.RR, name string) string {
	for range maxChain {
		next := ""
		for _, rr := range answer {
			if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, name) {
				next = dns.CanonicalName(c.Target)
			}
		}
		if next == "" {
			break
		}
		name = next
	}
	return name
}

// hasType reports whether bitmap lists t.
func hasType(bitmap []uint16, t uint16) bool { return slices.Contains(bitmap, t) }

// nsecNODATA: an NSEC at name without qtype or CNAME, or an empty
// non-terminal (an NSEC covering name whose next name is below it), or a
// wildcard at the closest encloser without qtype.
func nsecNODATA(nsec []*dns.NSEC, name string, qtype uint16) bool {
	for _, n := range nsec {
		owner := dns.CanonicalName(n.Hdr.Name)
		if owner == name {
			return !hasType(n.TypeBitMap, qtype) && !hasType(n.TypeBitMap, dns.TypeCNAME)
		}
	}
	for _, n := range nsec {
		owner, next := dns.CanonicalName(n.Hdr.Name), dns.CanonicalName(n.NextDomain)
		if dnsname.Covers(owner, next, name) && isSub(name, next) && next != name {
			return true // an empty non-terminal
		}
	}
	if cover := nsecCovering(nsec, name); cover != nil {
		wild := "*." + closestEncloser(cover, name)
		for _, n := range nsec {
			if dns.CanonicalName(n.Hdr.Name) == wild {
				return !hasType(n.TypeBitMap, qtype) && !hasType(n.TypeBitMap, dns.TypeCNAME)
			}
		}
	}
	return false
}

// nsecNXDOMAIN: an NSEC covering name and one covering the wildcard at
// its closest encloser (RFC 4035 section 5.4).
func nsecNXDOMAIN(nsec []*dns.NSEC, name string) bool {
	cover := nsecCovering(nsec, name)
	if cover == nil {
		return false
	}
	return nsecCovering(nsec, "*."+closestEncloser(cover, name)) != nil
}

// nsecCovering returns the NSEC whose span holds name, if any.
func nsecCovering(nsec []*dns.NSEC, name string) *dns.NSEC {
	for _, n := range nsec {
		if dnsname.Covers(dns.CanonicalName(n.Hdr.Name), dns.CanonicalName(n.NextDomain), name) {
			return n
		}
	}
	return nil
}

// closestEncloser is the longest ancestor of name that the covering NSEC
// shows to exist: the longer common ancestor of name with its owner or
// its next name.
func closestEncloser(cover *dns.NSEC, name string) string {
	n := max(dns.CompareDomainName(name, cover.Hdr.Name), dns.CompareDomainName(name, cover.NextDomain))
	return lastLabels(name, n)
}

// nsec3Denial checks an NSEC3 proof (RFC 5155 section 8). ok is false
// when the records prove nothing; secure is false for an opt-out span,
// which may hide an unsigned delegation.
func nsec3Denial(nsec3 []*dns.NSEC3, zone, name string, qtype uint16, nx bool) (secure, ok bool) {
	if !nx {
		for _, n := range nsec3 {
			if n.Match(name) {
				return true, !hasType(n.TypeBitMap, qtype) && !hasType(n.TypeBitMap, dns.TypeCNAME)
			}
		}
	}
	ce, nextCloser := nsec3ClosestEncloser(nsec3, zone, name)
	if ce == "" {
		return false, false
	}
	cover := nsec3Covering(nsec3, nextCloser)
	if cover == nil {
		return false, false
	}
	optOut := cover.Flags&1 == 1
	if !nx {
		// NODATA without a match: a DS query at an opt-out delegation
		// (insecure), or a wildcard at the encloser without the type.
		if qtype == dns.TypeDS && optOut {
			return false, true
		}
		for _, n := range nsec3 {
			if n.Match("*." + ce) {
				return true, !hasType(n.TypeBitMap, qtype) && !hasType(n.TypeBitMap, dns.TypeCNAME)
			}
		}
		return false, false
	}
	if nsec3Covering(nsec3, "*."+ce) == nil {
		return false, false
	}
	return !optOut, true
}

// nsec3ClosestEncloser finds the longest ancestor of name, within zone,
// that an NSEC3 matches, and the next closer name below it.
func nsec3ClosestEncloser(nsec3 []*dns.NSEC3, zone, name string) (ce, nextCloser string) {
	labels := dns.CountLabel(name)
	for n := labels - 1; n >= dns.CountLabel(zone); n-- {
		cand := lastLabels(name, n)
		for _, rr := range nsec3 {
			if rr.Match(cand) {
				return cand, lastLabels(name, n+1)
			}
		}
	}
	return "", ""
}

func nsec3Covering(nsec3 []*dns.NSEC3, name string) *dns.NSEC3 {
	for _, n := range nsec3 {
		if n.Cover(name) {
			return n
		}
	}
	return nil
}

// provesNoName reports whether the authority records ns prove that no
// name closer than the wildcard's source exists for owner, an answer
// synthesised from a wildcard whose RRSIG has labels labels.
func (r *Resolver) provesNoName(ns []dns.RR, owner string, labels int) bool {
	var nsec []*dns.NSEC
	var nsec3 []*dns.NSEC3
	for _, rr := range ns {
		switch rr := rr.(type) {
		case *dns.NSEC:
			nsec = append(nsec, rr)
		case *dns.NSEC3:
			nsec3 = append(nsec3, rr)
		}
	}
	if nsecCovering(nsec, owner) != nil {
		return true
	}
	return nsec3Covering(nsec3, lastLabels(owner, labels+1)) != nil
}
