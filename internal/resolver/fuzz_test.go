package resolver

import (
	"net"
	"testing"

	"github.com/miekg/dns"
)

// FuzzServeDNS feeds arbitrary packets to the handler the way miekg/dns's
// server does: what does not unpack is dropped before the handler.
func FuzzServeDNS(f *testing.F) {
	h := newHierarchy(f)
	r := newTestResolver(f, h, Config{RateLimit: -1})
	for _, q := range []*dns.Msg{
		query("www.example.test.", dns.TypeA),
		query("alias.example.test.", dns.TypeA),
		query("example.test.", dns.TypeANY),
		query("big.example.test.", dns.TypeTXT),
	} {
		b, _ := q.Pack()
		f.Add(b, false)
	}
	f.Add([]byte{0, 1, 2}, true)
	f.Fuzz(func(t *testing.T, packet []byte, tcp bool) {
		req := new(dns.Msg)
		if err := req.Unpack(packet); err != nil {
			return
		}
		var from net.Addr = udpFrom("127.0.0.1")
		if tcp {
			from = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
		}
		w := &fakeWriter{remote: from}
		r.ServeDNS(w, req)
		for _, m := range w.msgs {
			if _, err := m.Pack(); err != nil {
				t.Errorf("reply does not pack: %v", err)
			}
			if m.Id != req.Id {
				t.Errorf("reply id %d, query id %d", m.Id, req.Id)
			}
		}
	})
}
