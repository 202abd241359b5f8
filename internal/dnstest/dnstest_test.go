package dnstest

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const zoneData = `
example.test. 3600 IN NS ns1.example.test.
ns1.example.test. 3600 IN A 127.0.0.5
www.example.test. 300 IN A 192.0.2.1
alias.example.test. 300 IN CNAME www.example.test.
deep.a.b.example.test. 300 IN A 192.0.2.4
*.wild.example.test. 60 IN A 192.0.2.9
child.example.test. 3600 IN NS ns.child.example.test.
ns.child.example.test. 3600 IN A 127.0.0.6`

func TestZoneAnswers(t *testing.T) {
	z := MustZone(zoneData, "example.test.")
	srv, err := Serve(netip.MustParseAddrPort("127.0.0.1:0"), z)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(srv.Port)).String()

	for _, tc := range []struct {
		name   string
		qtype  uint16
		rcode  int
		answer []string // "owner type" of each answer record
		ns     string   // type of the authority section's first record
		glue   int
	}{
		{"www.example.test.", dns.TypeA, dns.RcodeSuccess, []string{"www.example.test. A"}, "", 0},
		{"WwW.ExAmple.test.", dns.TypeA, dns.RcodeSuccess, []string{"www.example.test. A"}, "", 0},
		{"www.example.test.", dns.TypeAAAA, dns.RcodeSuccess, nil, "SOA", 0},
		{"alias.example.test.", dns.TypeA, dns.RcodeSuccess, []string{"alias.example.test. CNAME", "www.example.test. A"}, "", 0},
		{"a.b.example.test.", dns.TypeA, dns.RcodeSuccess, nil, "SOA", 0}, // an empty non-terminal
		{"nope.example.test.", dns.TypeA, dns.RcodeNameError, nil, "SOA", 0},
		{"x1.wild.example.test.", dns.TypeA, dns.RcodeSuccess, []string{"x1.wild.example.test. A"}, "", 0},
		{"x1.wild.example.test.", dns.TypeTXT, dns.RcodeSuccess, nil, "SOA", 0},
		{"www.child.example.test.", dns.TypeA, dns.RcodeSuccess, nil, "NS", 1},
		{"example.test.", dns.TypeNS, dns.RcodeSuccess, []string{"example.test. NS"}, "", 1},
		{"www.other.test.", dns.TypeA, dns.RcodeRefused, nil, "", 0},
	} {
		for _, network := range []string{"udp", "tcp"} {
			req := new(dns.Msg)
			req.SetQuestion(tc.name, tc.qtype)
			resp, _, err := (&dns.Client{Net: network}).Exchange(req, addr)
			if err != nil {
				t.Fatalf("%s %s over %s: %v", tc.name, dns.TypeToString[tc.qtype], network, err)
			}
			var got []string
			for _, rr := range resp.Answer {
				got = append(got, strings.ToLower(rr.Header().Name)+" "+dns.TypeToString[rr.Header().Rrtype])
			}
			ns := ""
			if len(resp.Ns) > 0 {
				ns = dns.TypeToString[resp.Ns[0].Header().Rrtype]
			}
			if resp.Rcode != tc.rcode || strings.Join(got, ",") != strings.Join(tc.answer, ",") ||
				ns != tc.ns || len(resp.Extra) != tc.glue {
				t.Errorf("%s %s over %s: rcode %s, answer %v, authority %q, %d extra; want %s, %v, %q, %d",
					tc.name, dns.TypeToString[tc.qtype], network, dns.RcodeToString[resp.Rcode], got, ns, len(resp.Extra),
					dns.RcodeToString[tc.rcode], tc.answer, tc.ns, tc.glue)
			}
		}
	}
	if n := z.Count("www.example.test."); n != 6 {
		t.Errorf("Count(www.example.test.) = %d, want 6 (three questions over two transports)", n)
	}
}

func TestHierarchySharesPort(t *testing.T) {
	root := MustZone(". 86400 IN NS a.root.test.\na.root.test. 86400 IN A 127.0.0.2", ".")
	h := Start(t, Host{Addr: netip.MustParseAddr("127.0.0.2"), Handler: root},
		Host{Addr: netip.MustParseAddr("127.0.0.3"), Handler: MustZone("", "test.")},
		Host{Addr: netip.MustParseAddr("127.0.0.4")})
	for _, ip := range []string{"127.0.0.2", "127.0.0.3"} {
		req := new(dns.Msg)
		req.SetQuestion("test.", dns.TypeSOA)
		if _, _, err := new(dns.Client).Exchange(req, netip.AddrPortFrom(netip.MustParseAddr(ip), uint16(h.Port)).String()); err != nil {
			t.Errorf("%s:%d: %v", ip, h.Port, err)
		}
	}
	h.Stop()
	req := new(dns.Msg)
	req.SetQuestion(".", dns.TypeNS)
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	if _, _, err := c.Exchange(req, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), uint16(h.Port)).String()); err == nil {
		t.Error("the root still answers after Stop")
	}
}
