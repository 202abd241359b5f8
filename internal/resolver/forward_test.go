package resolver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"veil/internal/dnstest"
)

// testCA returns a pool holding a fresh CA and a server certificate it
// signed for dns.test and 127.0.0.1.
func testCA(tb testing.TB) (*x509.CertPool, tls.Certificate) {
	tb.Helper()
	f := dnstest.NewTLSFiles(tb, "dns.test", "127.0.0.1")
	return f.Pool, f.Cert
}

// upstreamAnswer answers every A question with addr.
func upstreamAnswer(req *dns.Msg, addr string) *dns.Msg {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.RecursionAvailable = true
	if req.Question[0].Qtype == dns.TypeA {
		resp.Answer = append(resp.Answer, mustRR(req.Question[0].Name+" 300 IN A "+addr))
	}
	return resp
}

func startDoT(tb testing.TB, cert tls.Certificate) string {
	addr, _ := startCountingDoT(tb, cert, 0)
	return addr
}

// startCountingDoT starts a DoT server that closes each connection after
// maxQueries answers (0: never) and counts the connections it accepts.
func startCountingDoT(tb testing.TB, cert tls.Certificate, maxQueries int) (string, *atomic.Int64) {
	tb.Helper()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ln := &countingListener{Listener: tcp}
	tl := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
	srv := &dns.Server{Listener: tl, Net: "tcp-tls", Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		w.WriteMsg(upstreamAnswer(req, "192.0.2.53"))
	})}
	if maxQueries > 0 {
		srv.MaxTCPQueries = maxQueries
	}
	ready := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(ready) }
	go srv.ActivateAndServe()
	<-ready
	tb.Cleanup(func() { srv.Shutdown() })
	return tcp.Addr().String(), &ln.accepted
}

type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// TestDoTReusesConnections: sequential queries share one TLS connection,
// and a server that closes connections between queries costs a retry,
// never a failed query.
func TestDoTReusesConnections(t *testing.T) {
	pool, cert := testCA(t)
	for _, tt := range []struct {
		name       string
		maxQueries int
		wantConns  func(n int64) bool
		want       string
	}{
		{"kept open", 0, func(n int64) bool { return n == 1 }, "1 connection"},
		{"closed after each answer", 1, func(n int64) bool { return n >= 20 }, "a connection per query"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr, accepted := startCountingDoT(t, cert, tt.maxQueries)
			r, err := New(Config{Forward: []string{"tls://" + addr + "#dns.test"}, RootCAs: pool, Timeout: 2 * time.Second, Egress: loopbackEgress})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 20 {
				// Distinct names: the cache must not answer.
				name := fmt.Sprintf("q%d.forwarded.test.", i)
				m, err := r.Resolve(context.Background(), name, dns.TypeA)
				if err != nil {
					t.Fatalf("query %d: %v", i, err)
				}
				if got := answerData(m); !slices.Equal(got, []string{"192.0.2.53"}) {
					t.Fatalf("query %d: answer %v", i, got)
				}
			}
			if n := accepted.Load(); !tt.wantConns(n) {
				t.Errorf("server accepted %d connections for 20 queries, want %s", n, tt.want)
			}
		})
	}
}

func startDoH(tb testing.TB, cert tls.Certificate) string {
	tb.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := new(dns.Msg)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/dns-message" || req.Unpack(body) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		out, _ := upstreamAnswer(req, "192.0.2.54").Pack()
		w.Header().Set("Content-Type", "application/dns-message")
		w.Write(out)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	tb.Cleanup(srv.Close)
	return srv.URL + "/dns-query"
}

func TestForward(t *testing.T) {
	pool, cert := testCA(t)
	dot := startDoT(t, cert)
	doh := startDoH(t, cert)
	_, otherCert := testCA(t) // signed by a CA the resolver does not trust
	untrusted := startDoT(t, otherCert)
	tests := []struct {
		name    string
		forward string
		roots   *x509.CertPool
		want    string
	}{
		{"DoT with servername", "tls://" + dot + "#dns.test", pool, "192.0.2.53"},
		{"DoT by IP", "tls://" + dot, pool, "192.0.2.53"},
		{"DoH", doh, pool, "192.0.2.54"},
		{"DoT wrong servername", "tls://" + dot + "#other.test", pool, ""},
		{"DoT untrusted CA", "tls://" + untrusted + "#dns.test", pool, ""},
		{"DoH system roots", doh, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(Config{Forward: []string{tt.forward}, RootCAs: tt.roots, Timeout: 2 * time.Second, Egress: loopbackEgress})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			m, err := r.Resolve(context.Background(), "www.forwarded.test.", dns.TypeA)
			if tt.want == "" {
				if !errors.Is(err, ErrServFail) {
					t.Errorf("err = %v, want ErrServFail (certificate check)", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if got := answerData(m); !slices.Equal(got, []string{tt.want}) {
				t.Errorf("answer = %v, want %s", got, tt.want)
			}
		})
	}
}

func TestParseUpstreams(t *testing.T) {
	for _, bad := range []string{"udp://1.1.1.1", "tls://", "1.1.1.1:53", "http://example.test/dns-query"} {
		if _, err := New(Config{Forward: []string{bad}}); err == nil {
			t.Errorf("New accepted forward upstream %q", bad)
		}
	}
}

// TestForwardEgressGuard: forwarders pass the egress guard like every
// other upstream, so a loopback forwarder the operator has not opened
// with --egress-allow gets no connection and the query fails.
func TestForwardEgressGuard(t *testing.T) {
	pool, cert := testCA(t)
	addr, accepted := startCountingDoT(t, cert, 0)
	var dohHits atomic.Int64
	doh := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { dohHits.Add(1) }))
	t.Cleanup(doh.Close)
	for _, fwd := range []string{"tls://" + addr + "#dns.test", "https://" + doh.Listener.Addr().String() + "/dns-query"} {
		r, err := New(Config{Forward: []string{fwd}, RootCAs: pool, Timeout: 2 * time.Second}) // default guard
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Resolve(context.Background(), "www.forwarded.test.", dns.TypeA); !errors.Is(err, ErrServFail) {
			t.Errorf("%s: err = %v, want ErrServFail", fwd, err)
		}
	}
	if n, m := accepted.Load(), dohHits.Load(); n+m != 0 {
		t.Errorf("the refused forwarders got %d DoT and %d DoH connections", n, m)
	}
}
