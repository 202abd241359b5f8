package resolver

import (
	"encoding/base64"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"veil/internal/dnstest"
)

// signedHierarchy is a signed root, a signed TLD and zones below it, on
// loopback, with a trust anchor file for the test root:
//
//	127.0.1.1  .              signed (NSEC)
//	127.0.1.2  test.          signed (NSEC); DS for every child below but insecure.
//	127.0.1.3  secure.test.   signed (NSEC), a wildcard, a forged record
//	127.0.1.4  bogus.test.    www's signature corrupted
//	127.0.1.5  expired.test.  every signature expired
//	127.0.1.6  insecure.test. unsigned, no DS in test.
//	127.0.1.7  nsec3.test.    signed (NSEC3, no extra iterations)
//	127.0.1.8  heavy.test.    signed (NSEC3, 151 iterations)
//	127.0.1.9  rollover.test. two DNSKEYs; the DS names the old one, which
//	                          signs the key set; data signed by the new one
type signedHierarchy struct {
	*dnstest.Hierarchy
	anchor string // trust anchor file
	clock  *testClock
	zones  map[string]*dnstest.Zone
}

func newSignedHierarchy(t testing.TB) *signedHierarchy {
	t.Helper()
	clock := newTestClock()
	now := clock.now()
	valid := dnstest.Signing{Inception: now.Add(-time.Hour), Expiration: now.Add(30 * 24 * time.Hour)}
	key := func(zone string) *dnstest.Key {
		k, err := dnstest.NewKey(zone, true)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	rrs := func(lines ...string) []dns.RR {
		var out []dns.RR
		for _, l := range lines {
			out = append(out, mustRR(l))
		}
		return out
	}
	sign := func(apex string, records []dns.RR, s dnstest.Signing) []dns.RR {
		signed, err := dnstest.Sign(apex, records, s)
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	with := func(s dnstest.Signing, keys ...*dnstest.Key) dnstest.Signing {
		s.Keys = keys
		return s
	}

	children := []struct {
		zone, addr string
		signed     bool
	}{
		{"secure.test.", "127.0.1.3", true}, {"bogus.test.", "127.0.1.4", true}, {"expired.test.", "127.0.1.5", true},
		{"insecure.test.", "127.0.1.6", false}, {"nsec3.test.", "127.0.1.7", true}, {"heavy.test.", "127.0.1.8", true},
		{"rollover.test.", "127.0.1.9", true},
	}
	keys := map[string]*dnstest.Key{}
	for _, c := range children {
		keys[c.zone] = key(c.zone)
	}
	newKey := key("rollover.test.")
	// test.: delegations, DS for the signed children.
	var tld []dns.RR
	for _, c := range children {
		tld = append(tld, rrs(c.zone+" 3600 IN NS ns."+c.zone, "ns."+c.zone+" 3600 IN A "+c.addr)...)
		if c.signed {
			ds := keys[c.zone].DS()
			ds.Hdr.Ttl = 3600
			tld = append(tld, ds)
		}
	}
	tldKey, rootKey := key("test."), key(".")
	tldDS := tldKey.DS()
	root := append(rrs("test. 86400 IN NS ns.test.", "ns.test. 86400 IN A 127.0.1.2"), tldDS)

	zoneData := map[string][]dns.RR{
		".":     sign(".", root, with(valid, rootKey)),
		"test.": sign("test.", tld, with(valid, tldKey)),
		"secure.test.": sign("secure.test.", rrs(
			"www.secure.test. 300 IN A 192.0.2.10",
			"secure.test. 300 IN MX 10 mail.secure.test.",
			"mail.secure.test. 300 IN A 192.0.2.25",
			"*.wild.secure.test. 300 IN A 192.0.2.11",
			"forged.secure.test. 300 IN A 192.0.2.12",
			"selfsigned.secure.test. 300 IN A 192.0.2.20",
			"stripped.secure.test. 300 IN A 192.0.2.21",
			// An unsigned child, no DS, on the same server, which answers
			// for it without a referral.
			"unsigned.secure.test. 300 IN NS ns.secure.test.",
		), with(valid, keys["secure.test."])),
		"bogus.test.":    sign("bogus.test.", rrs("www.bogus.test. 300 IN A 192.0.2.13"), with(valid, keys["bogus.test."])),
		"expired.test.":  nil,
		"insecure.test.": rrs("www.insecure.test. 300 IN A 192.0.2.14"),
		"nsec3.test.": sign("nsec3.test.", rrs("www.nsec3.test. 300 IN A 192.0.2.15"),
			func() dnstest.Signing { s := with(valid, keys["nsec3.test."]); s.NSEC3 = &dnstest.NSEC3{}; return s }()),
		"heavy.test.": sign("heavy.test.", rrs("www.heavy.test. 300 IN A 192.0.2.16"),
			func() dnstest.Signing {
				s := with(valid, keys["heavy.test."])
				s.NSEC3 = &dnstest.NSEC3{Iterations: 151}
				return s
			}()),
		"rollover.test.": sign("rollover.test.", rrs("www.rollover.test. 300 IN A 192.0.2.17"), dnstest.Signing{
			Keys: []*dnstest.Key{keys["rollover.test."], newKey}, KeySigners: []*dnstest.Key{keys["rollover.test."], newKey},
			DataSigners: []*dnstest.Key{newKey}, Inception: valid.Inception, Expiration: valid.Expiration,
		}),
	}
	expired := valid
	expired.Inception, expired.Expiration = now.Add(-60*24*time.Hour), now.Add(-time.Hour)
	zoneData["expired.test."] = sign("expired.test.", rrs("www.expired.test. 300 IN A 192.0.2.18"), with(expired, keys["expired.test."]))
	// Corrupt www.bogus.test.'s signature: one flipped bit.
	for _, rr := range zoneData["bogus.test."] {
		if s, ok := rr.(*dns.RRSIG); ok && s.TypeCovered == dns.TypeA && s.Hdr.Name == "www.bogus.test." {
			b, _ := base64.StdEncoding.DecodeString(s.Signature)
			b[10] ^= 1
			s.Signature = base64.StdEncoding.EncodeToString(b)
		}
	}

	h := &signedHierarchy{clock: clock, zones: map[string]*dnstest.Zone{}}
	addrs := map[string]string{".": "127.0.1.1", "test.": "127.0.1.2"}
	for _, c := range children {
		addrs[c.zone] = c.addr
	}
	var hosts []dnstest.Host
	for _, zone := range []string{".", "test.", "secure.test.", "bogus.test.", "expired.test.", "insecure.test.", "nsec3.test.", "heavy.test.", "rollover.test."} {
		apexes := []string{zone}
		if zone == "secure.test." {
			apexes = append(apexes, "unsigned.secure.test.")
			zoneData[zone] = append(zoneData[zone], rrs("www.unsigned.secure.test. 300 IN A 192.0.2.19")...)
		}
		z := dnstest.NewSignedZone(apexes, zoneData[zone])
		h.zones[zone] = z
		hosts = append(hosts, dnstest.Host{Addr: netip.MustParseAddr(addrs[zone]), Handler: z})
	}
	// A man in the middle changes forged.secure.test.'s address. And the
	// server, like most, compresses names case-blind, so owners and names
	// in data that end in the question name come back in its case.
	h.zones["secure.test."].Mangle = func(req, resp *dns.Msg, udp bool) {
		qn := req.Question[0].Name
		switch strings.ToLower(qn) {
		case "selfsigned.secure.test.":
			if req.Question[0].Qtype != dns.TypeA {
				break
			}
			// Forged data under a signature naming the owner as its zone.
			resp.Answer = []dns.RR{mustRR(qn + " 300 IN A 6.6.6.6"),
				mustRR(qn + " 300 IN RRSIG A 13 3 300 20260131000000 20251231230000 12345 " + qn + " AAAA")}
		case "stripped.secure.test.":
			resp.Answer = slices.DeleteFunc(resp.Answer, func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeRRSIG })
		case "gone.secure.test.":
			resp.Ns = slices.DeleteFunc(resp.Ns, func(rr dns.RR) bool {
				s, ok := rr.(*dns.RRSIG)
				return rr.Header().Rrtype == dns.TypeNSEC || ok && s.TypeCovered == dns.TypeNSEC
			})
		}
		for _, rr := range resp.Answer {
			if h := rr.Header(); strings.EqualFold(h.Name, qn) {
				h.Name = qn
			}
			if mx, ok := rr.(*dns.MX); ok && strings.HasSuffix(strings.ToLower(mx.Mx), "."+strings.ToLower(qn)) {
				mx.Mx = mx.Mx[:len(mx.Mx)-len(qn)] + qn
			}
		}
		for _, rr := range resp.Answer {
			if a, ok := rr.(*dns.A); ok && strings.EqualFold(a.Hdr.Name, "forged.secure.test.") {
				a.A = net.IPv4(6, 6, 6, 6)
			}
		}
	}
	h.Hierarchy = dnstest.Start(t, hosts...)
	h.anchor = filepath.Join(t.TempDir(), "anchor.ds")
	ds := rootKey.DS()
	if err := os.WriteFile(h.anchor, []byte("; the test root\n"+ds.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return h
}

// newValidatingResolver returns a resolver validating from h's root.
func newValidatingResolver(t testing.TB, h *signedHierarchy, cfg Config) *Resolver {
	t.Helper()
	cfg.RootHints, cfg.Port, cfg.TrustAnchor, cfg.Clock = h.Hints, h.Port, h.anchor, h.clock.now
	cfg.Egress = loopbackEgress
	if cfg.Timeout == 0 {
		cfg.Timeout = time.Second
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

// flags of a client query.
type flags struct{ do, cd, ad bool }

// ask sends one query to r from loopback and returns the reply.
func ask(t testing.TB, r *Resolver, name string, qtype uint16, f flags) *dns.Msg {
	t.Helper()
	req := new(dns.Msg).SetQuestion(name, qtype)
	req.SetEdns0(1232, f.do)
	req.CheckingDisabled, req.AuthenticatedData = f.cd, f.ad
	w := &fakeWriter{remote: udpFrom("127.0.0.1")}
	r.ServeDNS(w, req)
	if len(w.msgs) != 1 {
		t.Fatalf("%s: %d replies", name, len(w.msgs))
	}
	return w.msgs[0]
}

func ede(m *dns.Msg) (uint16, bool) {
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				return e.InfoCode, true
			}
		}
	}
	return 0, false
}

func countType(rrs []dns.RR, t uint16) int {
	n := 0
	for _, rr := range rrs {
		if rr.Header().Rrtype == t {
			n++
		}
	}
	return n
}

// TestDNSSECValidation runs every case of the signed hierarchy with DO
// set and checks rcode, AD, extended error and the records a DO client
// gets.
func TestDNSSECValidation(t *testing.T) {
	h := newSignedHierarchy(t)
	r := newValidatingResolver(t, h, Config{RateLimit: -1})
	noEDE := uint16(0xffff)
	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		rcode  int
		ad     bool
		ede    uint16
		answer []string
		// proofType is the type of denial record a DO client must get.
		proofType uint16
	}{
		{"secure", "www.secure.test.", dns.TypeA, dns.RcodeSuccess, true, noEDE, []string{"192.0.2.10"}, 0},
		{"secure NODATA (NSEC)", "www.secure.test.", dns.TypeAAAA, dns.RcodeSuccess, true, noEDE, nil, dns.TypeNSEC},
		{"NSEC NXDOMAIN", "nope.secure.test.", dns.TypeA, dns.RcodeNameError, true, noEDE, nil, dns.TypeNSEC},
		{"NXDOMAIN below a missing name", "a.b.nope.secure.test.", dns.TypeA, dns.RcodeNameError, true, noEDE, nil, dns.TypeNSEC},
		{"wildcard", "x.wild.secure.test.", dns.TypeA, dns.RcodeSuccess, true, noEDE, []string{"192.0.2.11"}, dns.TypeNSEC},
		{"forged record", "forged.secure.test.", dns.TypeA, dns.RcodeServerFailure, false, dns.ExtendedErrorCodeDNSBogus, nil, 0},
		{"signature naming the owner as its zone", "selfsigned.secure.test.", dns.TypeA, dns.RcodeServerFailure, false, dns.ExtendedErrorCodeDNSKEYMissing, nil, 0},
		{"signatures stripped", "stripped.secure.test.", dns.TypeA, dns.RcodeServerFailure, false, dns.ExtendedErrorCodeRRSIGsMissing, nil, 0},
		{"NXDOMAIN without its proof", "gone.secure.test.", dns.TypeA, dns.RcodeServerFailure, false, dns.ExtendedErrorCodeNSECMissing, nil, 0},
		{"unsigned child on the parent's server", "www.unsigned.secure.test.", dns.TypeA, dns.RcodeSuccess, false, noEDE, []string{"192.0.2.19"}, 0},
		{"its NXDOMAIN", "nope.unsigned.secure.test.", dns.TypeA, dns.RcodeNameError, false, noEDE, nil, 0},
		{"bogus signature", "www.bogus.test.", dns.TypeA, dns.RcodeServerFailure, false, dns.ExtendedErrorCodeDNSBogus, nil, 0},
		{"expired signature", "www.expired.test.", dns.TypeA, dns.RcodeServerFailure, false, dns.ExtendedErrorCodeSignatureExpired, nil, 0},
		{"insecure delegation", "www.insecure.test.", dns.TypeA, dns.RcodeSuccess, false, noEDE, []string{"192.0.2.14"}, 0},
		{"insecure NXDOMAIN", "nope.insecure.test.", dns.TypeA, dns.RcodeNameError, false, noEDE, nil, 0},
		{"NSEC3 secure", "www.nsec3.test.", dns.TypeA, dns.RcodeSuccess, true, noEDE, []string{"192.0.2.15"}, 0},
		{"NSEC3 NXDOMAIN", "nope.nsec3.test.", dns.TypeA, dns.RcodeNameError, true, noEDE, nil, dns.TypeNSEC3},
		{"NSEC3 NODATA", "www.nsec3.test.", dns.TypeTXT, dns.RcodeSuccess, true, noEDE, nil, dns.TypeNSEC3},
		{"NSEC3 over 150 iterations: insecure", "nope.heavy.test.", dns.TypeA, dns.RcodeNameError, false, noEDE, nil, dns.TypeNSEC3},
		{"signed data of that zone still secure", "www.heavy.test.", dns.TypeA, dns.RcodeSuccess, true, noEDE, []string{"192.0.2.16"}, 0},
		{"key rollover", "www.rollover.test.", dns.TypeA, dns.RcodeSuccess, true, noEDE, []string{"192.0.2.17"}, 0},
		{"the TLD's DS", "secure.test.", dns.TypeDS, dns.RcodeSuccess, true, noEDE, nil, 0},
		{"DNSKEY", "secure.test.", dns.TypeDNSKEY, dns.RcodeSuccess, true, noEDE, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ask(t, r, tt.qname, tt.qtype, flags{do: true})
			if m.Rcode != tt.rcode || m.AuthenticatedData != tt.ad {
				t.Fatalf("rcode %s AD %v, want %s AD %v\n%v", dns.RcodeToString[m.Rcode], m.AuthenticatedData,
					dns.RcodeToString[tt.rcode], tt.ad, m)
			}
			code, ok := ede(m)
			if tt.ede == noEDE && ok {
				t.Errorf("extended error %d, want none", code)
			}
			if tt.ede != noEDE && (!ok || code != tt.ede) {
				t.Errorf("extended error %d (%v), want %d", code, ok, tt.ede)
			}
			if tt.answer != nil && !slices.Equal(answerData(m), tt.answer) {
				t.Errorf("answer %v, want %v", answerData(m), tt.answer)
			}
			if tt.rcode != dns.RcodeServerFailure && tt.ad && len(m.Answer) > 0 && countType(m.Answer, dns.TypeRRSIG) == 0 {
				t.Errorf("no RRSIG in the answer for a DO client:\n%v", m)
			}
			if tt.proofType != 0 && countType(m.Ns, tt.proofType) == 0 {
				t.Errorf("no %s in the authority section for a DO client:\n%v", dns.TypeToString[tt.proofType], m)
			}
			if opt := m.IsEdns0(); opt == nil || !opt.Do() {
				t.Errorf("DO not echoed")
			}
		})
	}
}

// TestDNSSECClientFlags: AD only for clients that ask (DO or AD), the
// DNSSEC records only for DO clients, bogus data given as it is to CD
// clients.
func TestDNSSECClientFlags(t *testing.T) {
	h := newSignedHierarchy(t)
	r := newValidatingResolver(t, h, Config{RateLimit: -1})
	for _, tt := range []struct {
		f      flags
		ad     bool
		rrsigs bool
	}{
		{flags{}, false, false},
		{flags{ad: true}, true, false},
		{flags{do: true}, true, true},
		{flags{do: true, cd: true}, true, true},
	} {
		for _, name := range []string{"www.secure.test.", "nope.secure.test."} {
			m := ask(t, r, name, dns.TypeA, tt.f)
			sigs := countType(m.Answer, dns.TypeRRSIG)+countType(m.Ns, dns.TypeRRSIG) > 0
			nsec := countType(m.Ns, dns.TypeNSEC) > 0
			if m.AuthenticatedData != tt.ad || sigs != tt.rrsigs || nsec != (tt.rrsigs && name[0] == 'n') {
				t.Errorf("%s %+v: AD %v, signatures %v, NSEC %v; want AD %v, signatures %v", name, tt.f, m.AuthenticatedData, sigs, nsec, tt.ad, tt.rrsigs)
			}
			if opt := m.IsEdns0(); opt == nil || opt.Do() != tt.f.do {
				t.Errorf("%s %+v: DO not echoed as sent", name, tt.f)
			}
		}
	}
	m := ask(t, r, "www.bogus.test.", dns.TypeA, flags{do: true, cd: true})
	if m.Rcode != dns.RcodeSuccess || m.AuthenticatedData || !slices.Equal(answerData(m), []string{"192.0.2.13"}) {
		t.Errorf("CD client, bogus data: %v", m)
	}
	m = ask(t, r, "www.bogus.test.", dns.TypeA, flags{do: true})
	if m.Rcode != dns.RcodeServerFailure {
		t.Errorf("bogus data after a CD query: rcode %s", dns.RcodeToString[m.Rcode])
	}
}

// TestDNSSECCacheHitsCostNoCrypto: once validated, an answer's status
// lives with its cache entry; hits verify no signature and ask no server,
// and still carry AD.
func TestDNSSECCacheHitsCostNoCrypto(t *testing.T) {
	h := newSignedHierarchy(t)
	r := newValidatingResolver(t, h, Config{RateLimit: -1})
	for _, name := range []string{"www.secure.test.", "nope.nsec3.test."} {
		ask(t, r, name, dns.TypeA, flags{do: true})
	}
	verified := r.verifications.Load()
	if verified == 0 {
		t.Fatal("no signature verified")
	}
	asked := len(h.zones["secure.test."].Queries()) + len(h.zones["nsec3.test."].Queries())
	for range 3 {
		for _, f := range []flags{{do: true}, {ad: true}} {
			for _, name := range []string{"www.secure.test.", "nope.nsec3.test."} {
				if m := ask(t, r, name, dns.TypeA, f); !m.AuthenticatedData {
					t.Errorf("%s %+v: cache hit without AD", name, f)
				}
			}
		}
	}
	if n := r.verifications.Load(); n != verified {
		t.Errorf("cache hits verified %d signatures", n-verified)
	}
	if n := len(h.zones["secure.test."].Queries()) + len(h.zones["nsec3.test."].Queries()); n != asked {
		t.Errorf("cache hits asked %d queries upstream", n-asked)
	}
}

// TestTrustAnchorFile: the built-in anchor holds the IANA root KSKs; a
// file of DNSKEYs works like one of DS records; bad files are refused.
func TestTrustAnchorFile(t *testing.T) {
	a, err := loadAnchor("")
	if err != nil {
		t.Fatal(err)
	}
	var tags []uint16
	for _, d := range a.ds {
		tags = append(tags, d.KeyTag)
	}
	if a.zone != "." || !slices.Equal(tags, []uint16{20326, 38696}) {
		t.Errorf("built-in anchor: zone %s, key tags %v", a.zone, tags)
	}

	h := newSignedHierarchy(t)
	// The root's DNSKEY, validated from the DS anchor, as a DNSKEY anchor.
	var key string
	r := newValidatingResolver(t, h, Config{})
	m := ask(t, r, ".", dns.TypeDNSKEY, flags{do: true})
	for _, rr := range m.Answer {
		if k, ok := rr.(*dns.DNSKEY); ok {
			key = k.String()
		}
	}
	if key == "" || !m.AuthenticatedData {
		t.Fatalf("root DNSKEY: %v", m)
	}
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	h.anchor = write("dnskey", key+"\n")
	r = newValidatingResolver(t, h, Config{})
	if m := ask(t, r, "www.secure.test.", dns.TypeA, flags{do: true}); !m.AuthenticatedData {
		t.Errorf("DNSKEY anchor: not secure\n%v", m)
	}
	for name, text := range map[string]string{
		"empty":    "; nothing\n",
		"garbage":  "this is not a record\n",
		"a record": ". IN A 192.0.2.1\n",
		"two zones": ". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n" +
			"test. IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n",
	} {
		if _, err := New(Config{TrustAnchor: write(strings.ReplaceAll(name, " ", "-"), text)}); err == nil {
			t.Errorf("%s anchor file accepted", name)
		}
	}
	if _, err := New(Config{TrustAnchor: filepath.Join(dir, "missing")}); err == nil {
		t.Error("missing anchor file accepted")
	}
}

// TestVerifiedSignatures: a signature verified once is not verified
// again over the same data, also for another expansion of the same
// wildcard; changed data under the same signature is still refused.
func TestVerifiedSignatures(t *testing.T) {
	clock := newTestClock()
	key, err := dnstest.NewKey("example.", true)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := dnstest.Sign("example.", []dns.RR{mustRR(`*.example. 300 IN TXT "Data"`)}, dnstest.Signing{
		Keys: []*dnstest.Key{key}, Inception: clock.now().Add(-time.Hour), Expiration: clock.now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var sig *dns.RRSIG
	for _, rr := range signed {
		if s, ok := rr.(*dns.RRSIG); ok && s.TypeCovered == dns.TypeTXT {
			sig = s
		}
	}
	r := &Resolver{now: clock.now}
	keys := []*dns.DNSKEY{key.DNSKEY}
	check := func(owner, text string) bool {
		rr := mustRR(owner + ` 300 IN TXT "` + text + `"`)
		s := dns.Copy(sig).(*dns.RRSIG)
		s.Hdr.Name = owner
		_, berr := r.verifyRRset([]dns.RR{rr}, []dns.RR{s}, "example.", keys)
		return berr == nil
	}
	if !check("a.example.", "Data") || r.verifications.Load() != 1 {
		t.Fatalf("first expansion: verified %d", r.verifications.Load())
	}
	if !check("b.example.", "Data") || r.verifications.Load() != 1 {
		t.Errorf("second expansion verified again: %d", r.verifications.Load())
	}
	for _, forged := range []string{"data", "Data2"} {
		if check("c.example.", forged) {
			t.Errorf("TXT %q accepted under the signature of \"Data\"", forged)
		}
	}
}
