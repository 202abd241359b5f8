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
	names := []struct {
		name  string
		qtype uint16
	}{
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
	udp, tcp := udpFrom("127.0.0.1"), &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	for _, n := range names {
		for _, qname := range []string{n.name, strings.ToUpper(n.name), alternateCase(n.name)} {
			for _, edns := range []uint16{0, 512, 1232, 4096} {
				for _, flags := range []struct{ rd, cd bool }{{true, false}, {false, true}} {
					for _, from := range []net.Addr{udp, tcp} {
						req := query(qname, n.qtype)
						req.RecursionDesired, req.CheckingDisabled = flags.rd, flags.cd
						if edns != 0 {
							req.SetEdns0(edns, false)
						}
						name := fmt.Sprintf("%s/%d/edns%d/%v/%s", qname, n.qtype, edns, flags, from.Network())
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
