package resolver

import (
	"testing"

	"github.com/miekg/dns"
)

// BenchmarkServeDNSCached measures the cache-hit path of the handler.
func BenchmarkServeDNSCached(b *testing.B) {
	h := newHierarchy(b)
	r := newTestResolver(b, h, Config{RateLimit: -1})
	req := query("www.example.test.", dns.TypeA)
	w := &fakeWriter{remote: udpFrom("127.0.0.1")}
	r.ServeDNS(w, req)
	b.ReportAllocs()
	for b.Loop() {
		w.msgs = w.msgs[:0]
		r.ServeDNS(w, req)
	}
}
