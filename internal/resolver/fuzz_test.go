package resolver

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"net/http/httptest"
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

// FuzzDoH feeds arbitrary bodies, paths and host names to the public
// DNS over HTTPS handler: every request gets a status below 500, and a
// 200 carries a DNS message answering the query.
func FuzzDoH(f *testing.F) {
	h := newHierarchy(f)
	r := newTestResolver(f, h, Config{RateLimit: -1, Blocklists: map[string]string{
		"ads": writeFile(f, f.TempDir(), "ads.txt", "www.example.test\n"),
	}})
	e, err := r.Encrypted(EncryptedConfig{Public: true, Domain: "dns.test",
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, errors.New("unused") }})
	if err != nil {
		f.Fatal(err)
	}
	good, _ := query("www.example.test.", dns.TypeA).Pack()
	f.Add(good, "/dns-query", "dns.test")
	f.Add(good, "/dns-query/ads", "dns.test")
	f.Add(good, "/dns-query", "ads-all.dns.test")
	f.Add([]byte{0, 1, 2}, "/dns-query/+-+", "-.dns.test")
	f.Fuzz(func(t *testing.T, body []byte, path, host string) {
		req := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		req.URL.Path, req.Host = path, host
		req.RemoteAddr = "127.0.0.1:1"
		req.Header.Set("Content-Type", "application/dns-message")
		w := httptest.NewRecorder()
		e.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("status %d", w.Code)
		}
		if w.Code == 200 {
			var m, q dns.Msg
			if m.Unpack(w.Body.Bytes()) != nil || q.Unpack(body) != nil || m.Id != q.Id {
				t.Fatalf("200 without the answer to the query")
			}
		}
	})
}
