package resolver

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"testing"

	"github.com/miekg/dns"
)

// BenchmarkDoTHit measures one cache hit over DNS over TLS on loopback:
// query written and answer read on one kept connection, one at a time.
func BenchmarkDoTHit(b *testing.B) {
	h := newHierarchy(b)
	f := startEncrypted(b, newTestResolver(b, h, Config{RateLimit: -1}), EncryptedConfig{})
	c, err := tls.Dial("tcp", f.dot, &tls.Config{RootCAs: f.files.Pool, ServerName: "dns.test"})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	co := &dns.Conn{Conn: c}
	req := query("www.example.test.", dns.TypeA)
	b.ReportAllocs()
	for b.Loop() {
		if err := co.WriteMsg(req); err != nil {
			b.Fatal(err)
		}
		if _, err := co.ReadMsg(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDoHHit measures one cache hit over DNS over HTTPS (HTTP/2
// POST) on loopback, one request at a time on a kept connection.
func BenchmarkDoHHit(b *testing.B) {
	h := newHierarchy(b)
	f := startEncrypted(b, newTestResolver(b, h, Config{RateLimit: -1}), EncryptedConfig{})
	body, _ := query("www.example.test.", dns.TypeA).Pack()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := f.http.Post("https://127.0.0.1/dns-query", dohContentType, bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatal(resp.Status)
		}
	}
}
