package resolver

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// TestStandards: BADVERS for EDNS versions above 0 (RFC 6891), answers in
// the client's case and none of the resolver's 0x20 pattern in them
// (RFC 4343), blocked names with the "Blocked" extended error (RFC 8914),
// on the general path and from the packed cache alike.
func TestStandards(t *testing.T) {
	h := newSignedHierarchy(t)
	ads := writeFile(t, t.TempDir(), "ads.txt", "bogus.test\n")
	r := newValidatingResolver(t, h, Config{
		RateLimit:   -1,
		Blocklists:  map[string]string{"ads": ads},
		BlockPolicy: func(netip.Addr) []string { return []string{"ads"} },
	})
	for round := range 2 { // the second round answers from the cache
		t.Run("BADVERS", func(t *testing.T) {
			req := new(dns.Msg).SetQuestion("www.secure.test.", dns.TypeA)
			req.SetEdns0(1232, true)
			req.IsEdns0().SetVersion(1)
			w := &fakeWriter{remote: udpFrom("127.0.0.1")}
			r.ServeDNS(w, req)
			if len(w.msgs) != 1 {
				t.Fatalf("%d replies", len(w.msgs))
			}
			m := w.msgs[0]
			if opt := m.IsEdns0(); m.Rcode != dns.RcodeBadVers || opt == nil || opt.Version() != 0 || len(m.Answer) != 0 {
				t.Errorf("round %d: rcode %s, OPT %v, %d answers; want BADVERS, version 0, none", round, dns.RcodeToString[m.Rcode], opt, len(m.Answer))
			}
		})
		t.Run("case", func(t *testing.T) {
			for _, f := range []flags{{}, {do: true}} {
				m := ask(t, r, "WwW.SeCuRe.TeSt.", dns.TypeA, f)
				for _, rr := range m.Answer {
					if rr.Header().Name != "WwW.SeCuRe.TeSt." {
						t.Errorf("round %d %+v: owner %q, want the client's case", round, f, rr.Header().Name)
					}
				}
				m = ask(t, r, "secure.test.", dns.TypeMX, f)
				var mx *dns.MX
				for _, rr := range m.Answer {
					if rr, ok := rr.(*dns.MX); ok {
						mx = rr
					}
				}
				if mx == nil || mx.Mx != "mail.secure.test." || m.AuthenticatedData != f.do {
					t.Errorf("round %d %+v: MX %v, AD %v; want target mail.secure.test.", round, f, mx, m.AuthenticatedData)
				}
			}
		})
		t.Run("blocked", func(t *testing.T) {
			m := ask(t, r, "www.bogus.test.", dns.TypeA, flags{})
			if code, ok := ede(m); m.Rcode != dns.RcodeNameError || !ok || code != dns.ExtendedErrorCodeBlocked {
				t.Errorf("round %d: rcode %s, extended error %d %v; want NXDOMAIN, Blocked (15)", round, dns.RcodeToString[m.Rcode], code, ok)
			}
		})
	}
}
