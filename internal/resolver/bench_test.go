package resolver

import (
	"context"
	"net"
	"net/netip"
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

// discardWriter is a dns.ResponseWriter that drops what is written, so a
// benchmark measures the handler and not the writer.
type discardWriter struct{ fakeWriter }

func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// BenchmarkServeDNSHit measures a cache hit as dnsperf sends it (EDNS0,
// RD) up to the bytes handed to the writer: with the packed form ("wire"),
// through the general copy-and-pack path ("general"), and from the
// query's bytes as ServePacket answers it ("bytes").
func BenchmarkServeDNSHit(b *testing.B) {
	h := newHierarchy(b)
	r := newTestResolver(b, h, Config{RateLimit: -1})
	req := query("www.example.test.", dns.TypeA)
	req.SetEdns0(4096, false)
	w := &discardWriter{fakeWriter{remote: udpFrom("127.0.0.1")}}
	r.ServeDNS(w, req)
	for _, bc := range []struct {
		name   string
		noWire bool
	}{{"wire", false}, {"general", true}} {
		b.Run(bc.name, func(b *testing.B) {
			r.noWire = bc.noWire
			b.ReportAllocs()
			for b.Loop() {
				r.ServeDNS(w, req)
			}
		})
	}
	// "bytes": ServePacket's path, from the query's bytes, no unpack.
	b.Run("bytes", func(b *testing.B) {
		r.noWire = false
		q := query("www.example.test.", dns.TypeA)
		q.Extra = nil // query's OPT, replaced: two OPT records are not a plain query
		q.SetEdns0(4096, false)
		wire, err := q.Pack()
		if err != nil {
			b.Fatal(err)
		}
		client := netip.MustParseAddr("127.0.0.1")
		out, name := make([]byte, 0, 512), make([]byte, 0, 256)
		b.ReportAllocs()
		for b.Loop() {
			var ok bool
			if out, name, ok = r.answerHit(out[:0], name, wire, client); !ok {
				b.Fatal("not answered")
			}
		}
	})
}

// BenchmarkUpstreamUDP measures one upstream UDP exchange with a loopback
// server: from the socket pool ("pool") and from a fresh connected socket
// per query as before ("fresh", miekg/dns's Client).
func BenchmarkUpstreamUDP(b *testing.B) {
	server := fakeUpstream(b, func(pc net.PacketConn, from net.Addr, req *dns.Msg) {
		send(pc, from, answerA(req, "192.0.2.1"))
	})
	b.Run("pool", func(b *testing.B) {
		p := newUDPPool("udp4")
		b.ReportAllocs()
		for b.Loop() {
			if _, err := poolExchange(b, p, server, "www.example.test."); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fresh", func(b *testing.B) {
		c := &dns.Client{Net: "udp", UDPSize: EDNSBufferSize}
		b.ReportAllocs()
		for b.Loop() {
			q := newQuery(randomCase("www.example.test."), dns.TypeA, false)
			if _, _, err := c.ExchangeContext(context.Background(), q, server.String()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
