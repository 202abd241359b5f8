// Package dnsname orders domain names canonically (RFC 4034 section 6.1),
// the order NSEC chains follow: the resolver checks NSEC denial proofs
// with it, and the test servers of dnstest build and search their chains
// with it.
package dnsname

import (
	"bytes"
	"strings"

	"github.com/miekg/dns"
)

// Compare returns -1, 0 or +1 as a sorts before, equal to or after b in
// canonical order: by labels from the rightmost, each compared as
// lower-cased octets. Names are in presentation form, fully qualified.
func Compare(a, b string) int {
	la, lb := labels(a), labels(b)
	for i := 1; i <= len(la) && i <= len(lb); i++ {
		if c := bytes.Compare(la[len(la)-i], lb[len(lb)-i]); c != 0 {
			return c
		}
	}
	switch {
	case len(la) < len(lb):
		return -1
	case len(la) > len(lb):
		return 1
	}
	return 0
}

// labels returns the wire octets of each label of name, lower-cased,
// with escapes such as \. and \065 decoded.
func labels(name string) [][]byte {
	var out [][]byte
	for _, l := range dns.SplitDomainName(name) {
		out = append(out, []byte(strings.ToLower(unescape(l))))
	}
	return out
}

// unescape decodes the presentation escapes of one label.
func unescape(l string) string {
	if strings.IndexByte(l, '\\') < 0 {
		return l
	}
	var b strings.Builder
	for i := 0; i < len(l); i++ {
		c := l[i]
		if c == '\\' && i+3 < len(l) && isDigit(l[i+1]) && isDigit(l[i+2]) && isDigit(l[i+3]) {
			b.WriteByte((l[i+1]-'0')*100 + (l[i+2]-'0')*10 + (l[i+3] - '0'))
			i += 3
			continue
		}
		if c == '\\' && i+1 < len(l) {
			i++
			c = l[i]
		}
		b.WriteByte(c)
	}
	return b.String()
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// Covers reports whether name lies strictly between owner and next in
// canonical order: the span an NSEC record says holds no names. The last
// NSEC of a zone wraps round to the apex, so next sorts before owner.
func Covers(owner, next, name string) bool {
	if Compare(owner, next) < 0 {
		return Compare(owner, name) < 0 && Compare(name, next) < 0
	}
	return Compare(owner, name) < 0 || Compare(name, next) < 0
}
