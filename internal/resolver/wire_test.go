package resolver

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
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
						if from == udp {
							compareHit(t, r, name, req, slow.raw[0])
							if edns != 0 { // a cookie changes nothing
								req.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0123456789abcdef"}}
								compareHit(t, r, name+"/cookie", req, slow.raw[0])
							}
						}
					}
				}
			}
		}
	}
}

// compareHit checks that answerHit, given req's bytes, answers what the
// general path does (want), or declines.
func compareHit(t *testing.T, r *Resolver, name string, req *dns.Msg, want []byte) {
	t.Helper()
	wire, err := req.Pack()
	if err != nil {
		t.Fatal(err)
	}
	out, _, ok := r.answerHit(nil, nil, wire, netip.MustParseAddr("127.0.0.1"))
	if ok && !bytes.Equal(out, want) {
		t.Errorf("%s: reply from the query's bytes differs\ngeneral % x\nbytes   % x", name, want, out)
	}
	hitChecked++
	if ok {
		hitAnswered++
	}
}

var hitChecked, hitAnswered int

// TestHitFromBytes: a cache hit answered from the query's bytes (what
// ServePacket does before unpacking) is the general path's reply, and
// queries it must not answer go to the general path.
func TestHitFromBytes(t *testing.T) {
	h := newHierarchy(t)
	r := newTestResolver(t, h, Config{RateLimit: -1})
	names := []wireName{{"www.example.test.", dns.TypeA}, {"nope.example.test.", dns.TypeA}, {"alias.example.test.", dns.TypeA}}
	for _, n := range names {
		r.ServeDNS(&fakeWriter{remote: udpFrom("127.0.0.1")}, query(n.name, n.qtype))
	}
	hitChecked, hitAnswered = 0, 0
	compareWire(t, r, names)
	t.Logf("answered %d of %d cache hits from their bytes", hitAnswered, hitChecked)
	if hitAnswered < hitChecked/2 {
		t.Errorf("answered %d of %d cache hits from their bytes", hitAnswered, hitChecked)
	}
	client := netip.MustParseAddr("127.0.0.1")
	decline := map[string]func(m *dns.Msg){
		"EDNS version 1": func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) },
		"NSID option": func(m *dns.Msg) {
			m.SetEdns0(1232, false)
			m.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_NSID{Code: dns.EDNS0NSID}}
		},
		"class CH":      func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS },
		"type ANY":      func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeANY },
		"opcode NOTIFY": func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify },
		"a response":    func(m *dns.Msg) { m.Response = true },
		"escaped name":  func(m *dns.Msg) { m.Question[0].Name = `w\.ww.example.test.` },
		"not cached":    func(m *dns.Msg) { m.Question[0].Name = "other.example.test." },
		"an answer added": func(m *dns.Msg) {
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "x.", Rrtype: dns.TypeA, Class: dns.ClassINET}}}
		},
	}
	for what, change := range decline {
		m := query("www.example.test.", dns.TypeA)
		change(m)
		wire, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		if _, _, ok := r.answerHit(nil, nil, wire, client); ok {
			t.Errorf("%s: answered from the bytes, want the general path", what)
		}
		// Cut short anywhere: never answered, never a panic.
		for i := 12; i < len(wire); i++ {
			if _, _, ok := r.answerHit(nil, nil, wire[:i], client); ok {
				t.Errorf("%s cut to %d bytes: answered", what, i)
			}
		}
	}
	m := query("WwW.example.test.", dns.TypeA)
	wire, _ := m.Pack()
	if _, _, ok := r.answerHit(nil, nil, wire, client); !ok {
		t.Errorf("plain cache hit not answered from its bytes")
	}
	// The client's rate limit holds on this path too (burst: twice the rate).
	limited := newTestResolver(t, h, Config{RateLimit: 1})
	limited.ServeDNS(&fakeWriter{remote: udpFrom("127.0.0.1")}, query("www.example.test.", dns.TypeA))
	replies := 0
	for range 5 {
		if out, _, ok := limited.answerHit(nil, nil, wire, client); ok && len(out) > 0 {
			replies++
		} else if !ok {
			t.Fatalf("rate-limited resolver: hit not answered from the bytes")
		}
	}
	if replies != 1 { // the general path's query took one token of two
		t.Errorf("%d replies to 5 queries at 1/s after one, want 1", replies)
	}
	out, name := make([]byte, 0, 512), make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { out, name, _ = r.answerHit(out[:0], name, wire, client) }); n != 0 {
		t.Errorf("a hit from the bytes allocates %v times, want none", n)
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
