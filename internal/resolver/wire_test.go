package resolver

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// rawWriter is a dns.ResponseWriter that keeps the bytes written.
type rawWriter struct {
	fakeWriter
	raw [][]byte
}

func (w *rawWriter) Write(b []byte) (int, error) {
	w.raw = append(w.raw, bytes.Clone(b))
	return len(b), nil
}

// TestWireMatchesGeneralPath checks that a cache hit served from the packed
// form is byte for byte what the general path (copy, rewrite, pack) sends.
func TestWireMatchesGeneralPath(t *testing.T) {
	h := newHierarchy(t)
	clock := newTestClock()
	r := newTestResolver(t, h, Config{Clock: clock.now, RateLimit: -1})
	names := []wireName{
		{"www.example.test.", dns.TypeA},
		{"alias.example.test.", dns.TypeA},
		{"inzone.example.test.", dns.TypeA},
		{"nope.example.test.", dns.TypeA},
		{"www.example.test.", dns.TypeAAAA},
		{"big.example.test.", dns.TypeTXT},
	}
	for _, n := range names {
		r.ServeDNS(&fakeWriter{remote: udpFrom("127.0.0.1")}, query(n.name, n.qtype))
	}
	clock.advance(100 * time.Second) // TTLs are aged on the way out
	compareWire(t, r, names)
	udp := udpFrom("127.0.0.1")
	// The fast path did serve hits (rather than always declining).
	w := &rawWriter{fakeWriter: fakeWriter{remote: udp}}
	if !r.writeCached(w, query("WWW.example.test.", dns.TypeA), "www.example.test.", 0, false) {
		t.Errorf("fresh cache hit not served from the packed form")
	}
	// Stale entries go through the general path (serve-stale rules).
	clock.advance(time.Hour)
	if r.writeCached(w, query("www.example.test.", dns.TypeA), "www.example.test.", 0, false) {
		t.Errorf("expired entry served from the packed form")
	}
}

// wireName is a question compareWire asks.
type wireName struct {
	name  string
	qtype uint16
}

// compareWire asks r each of names in several cases, EDNS sizes, flags
// and transports, through the general path and the packed one, and
// fails when their replies differ by a byte.
func compareWire(t *testing.T, r *Resolver, names []wireName) {
	t.Helper()
	udp, tcp := udpFrom("127.0.0.1"), &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	for _, n := range names {
		for _, qname := range []string{n.name, strings.ToUpper(n.name), alternateCase(n.name)} {
			for _, edns := range []uint16{0, 512, 1232, 4096} {
				for _, f := range []struct{ rd, cd, do, ad bool }{{rd: true}, {cd: true}, {rd: true, do: true}, {ad: true}, {do: true, cd: true}} {
					if edns == 0 && f.do {
						continue
					}
					for _, from := range []net.Addr{udp, tcp} {
						req := query(qname, n.qtype)
						req.RecursionDesired, req.CheckingDisabled, req.AuthenticatedData = f.rd, f.cd, f.ad
						req.Extra = nil
						if edns != 0 {
							req.SetEdns0(edns, f.do)
						}
						name := fmt.Sprintf("%s/%d/edns%d/%+v/%s", qname, n.qtype, edns, f, from.Network())
						r.noWire = true
						slow := &rawWriter{fakeWriter: fakeWriter{remote: from}}
						r.ServeDNS(slow, req)
						r.noWire = false
						fast := &rawWriter{fakeWriter: fakeWriter{remote: from}}
						r.ServeDNS(fast, req)
						if len(slow.raw) != 1 || len(fast.raw) != 1 {
							t.Fatalf("%s: %d and %d replies", name, len(slow.raw), len(fast.raw))
						}
						if !bytes.Equal(slow.raw[0], fast.raw[0]) {
							t.Errorf("%s: packed reply differs\nslow % x\nfast % x", name, slow.raw[0], fast.raw[0])
						}
					}
				}
			}
		}
	}
}

// TestWireSigned: the same for validated answers, whose packed forms
// carry AD and, for DO clients, the signatures and denial records.
func TestWireSigned(t *testing.T) {
	h := newSignedHierarchy(t)
	r := newValidatingResolver(t, h, Config{RateLimit: -1})
	names := []wireName{
		{"www.secure.test.", dns.TypeA}, {"nope.secure.test.", dns.TypeA}, {"www.secure.test.", dns.TypeAAAA},
		{"nope.nsec3.test.", dns.TypeA}, {"www.insecure.test.", dns.TypeA}, {"x.wild.secure.test.", dns.TypeA},
		{"secure.test.", dns.TypeMX},
	}
	for _, n := range names {
		ask(t, r, n.name, n.qtype, flags{do: true})
	}
	h.clock.advance(10 * time.Second)
	compareWire(t, r, names)
	w := &rawWriter{fakeWriter: fakeWriter{remote: udpFrom("127.0.0.1")}}
	req := query("www.secure.test.", dns.TypeA)
	req.SetEdns0(1232, true)
	if !r.writeCached(w, req, "www.secure.test.", 0, false) {
		t.Errorf("fresh signed cache hit not served from the packed form")
	}
}

// alternateCase upper-cases every other letter of name.
func alternateCase(name string) string {
	b := []byte(name)
	for i := 0; i < len(b); i += 2 {
		if 'a' <= b[i] && b[i] <= 'z' {
			b[i] -= 'a' - 'A'
		}
	}
	return string(b)
}
