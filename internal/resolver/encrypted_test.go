package resolver

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"veil/internal/certfile"
	"veil/internal/dnstest"
	"veil/internal/logtest"
)

// encryptedFixture is a resolver over the test hierarchy with both
// encrypted front ends on loopback.
type encryptedFixture struct {
	r        *Resolver
	files    dnstest.TLSFiles
	dot, doh string // HOST:PORT
	http     *http.Client
}

// startEncrypted serves r's front ends made from cfg on loopback until
// the test ends. The certificate covers dns.test, *.dns.test and
// 127.0.0.1.
func startEncrypted(t testing.TB, r *Resolver, cfg EncryptedConfig) encryptedFixture {
	t.Helper()
	files := dnstest.NewTLSFiles(t, "dns.test", "*.dns.test", "127.0.0.1")
	cert, err := certfile.Load(files.CertFile, files.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg.GetCertificate = cert.GetCertificate
	e, err := r.Encrypted(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	listen := func(serve func(context.Context, net.Listener) error) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := serve(ctx, ln); err != nil {
				t.Errorf("serve: %v", err)
			}
		}()
		return ln.Addr().String()
	}
	f := encryptedFixture{r: r, files: files, dot: listen(e.ServeDoT), doh: listen(e.ServeDoH)}
	f.http = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: files.Pool},
		ForceAttemptHTTP2: true,
		// Every name the tests use is this front end.
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, f.doh)
		},
	}}
	t.Cleanup(func() { cancel(); f.http.CloseIdleConnections(); wg.Wait() })
	return f
}

// blockingResolver blocks www.example.test under ads and www.hoster.alt
// under malware.
func blockingResolver(t *testing.T, h *hierarchy, cfg Config) *Resolver {
	t.Helper()
	dir := t.TempDir()
	cfg.Blocklists = map[string]string{
		"ads":     writeFile(t, dir, "ads.txt", "www.example.test\n"),
		"malware": writeFile(t, dir, "malware.txt", "0.0.0.0 www.hoster.alt\n"),
	}
	return newTestResolver(t, h, cfg)
}

func (f encryptedFixture) dotClient(serverName string) *dns.Client {
	return &dns.Client{Net: "tcp-tls", Timeout: 10 * time.Second,
		TLSConfig: &tls.Config{RootCAs: f.files.Pool, ServerName: serverName}}
}

// dohGet asks name over GET on url (host names are dialled to the
// front end) and returns the answer and the response.
func (f encryptedFixture) dohGet(t *testing.T, url, name string) (*dns.Msg, *http.Response) {
	t.Helper()
	q := query(name, dns.TypeA)
	q.Id = 0
	b, _ := q.Pack()
	resp, err := f.http.Get(url + "?dns=" + base64.RawURLEncoding.EncodeToString(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, resp
	}
	m := new(dns.Msg)
	if err := m.Unpack(body); err != nil {
		t.Fatalf("answer: %v", err)
	}
	return m, resp
}

func TestDoT(t *testing.T) {
	h := newHierarchy(t)
	f := startEncrypted(t, newTestResolver(t, h, Config{}), EncryptedConfig{})
	m, _, err := f.dotClient("dns.test").Exchange(query("www.example.test.", dns.TypeA), f.dot)
	if err != nil {
		t.Fatal(err)
	}
	if got := answerData(m); !slices.Equal(got, []string{"192.0.2.1"}) {
		t.Errorf("answer = %v", got)
	}

	// Pipelined queries on one connection all come back, matched by ID
	// (RFC 7766 section 6.2.1.1).
	c, err := tls.Dial("tcp", f.dot, &tls.Config{RootCAs: f.files.Pool, ServerName: "dns.test", NextProtos: []string{"dot"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p != "dot" {
		t.Errorf("ALPN = %q, want dot", p)
	}
	names := map[uint16]string{1: "www.example.test.", 2: "www.hoster.alt.", 3: "www.glueless.test."}
	var out bytes.Buffer
	for id, name := range names {
		q := query(name, dns.TypeA)
		q.Id = id
		b, _ := q.Pack()
		out.Write(binary.BigEndian.AppendUint16(nil, uint16(len(b))))
		out.Write(b)
	}
	if _, err := c.Write(out.Bytes()); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for range names {
		var size [2]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, binary.BigEndian.Uint16(size[:]))
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatal(err)
		}
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			t.Fatal(err)
		}
		name, ok := names[m.Id]
		if !ok || m.Question[0].Name != name || len(m.Answer) == 0 {
			t.Errorf("answer %d for %s: %v", m.Id, m.Question[0].Name, m.Answer)
		}
		delete(names, m.Id)
	}
}

// TestDoTBadInput sends what a DNS over TLS server must survive: each
// case ends its connection without an answer, and the server goes on
// answering others.
func TestDoTBadInput(t *testing.T) {
	h := newHierarchy(t)
	f := startEncrypted(t, newTestResolver(t, h, Config{}), EncryptedConfig{})
	good, _ := query("www.example.test.", dns.TypeA).Pack()
	frame := func(b []byte) []byte { return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...) }
	response := func() []byte { m := query("x.test.", dns.TypeA); m.Response = true; b, _ := m.Pack(); return b }()
	tests := []struct {
		name string
		send []byte
	}{
		{"half a length prefix", []byte{0}},
		{"length longer than the data", append([]byte{0, 200}, good[:20]...)},
		{"oversized query", append([]byte{0xff, 0xff}, make([]byte, 5000)...)},
		{"shorter than a header", frame([]byte{1, 2, 3})},
		{"garbage", frame(bytes.Repeat([]byte{0xff}, 40))},
		{"a response", frame(response)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tls.Dial("tcp", f.dot, &tls.Config{RootCAs: f.files.Pool, ServerName: "dns.test"})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write(tt.send)
			c.CloseWrite()
			c.SetReadDeadline(time.Now().Add(time.Minute))
			if b, err := io.ReadAll(c); len(b) != 0 {
				t.Errorf("got %d bytes back (err %v), want the connection closed without an answer", len(b), err)
			}
		})
	}
	m, _, err := f.dotClient("dns.test").Exchange(query("www.example.test.", dns.TypeA), f.dot)
	if err != nil || len(m.Answer) == 0 {
		t.Fatalf("after bad input: %v %v", m, err)
	}
}

func TestDoH(t *testing.T) {
	h := newHierarchy(t)
	f := startEncrypted(t, newTestResolver(t, h, Config{}), EncryptedConfig{})
	m, resp := f.dohGet(t, "https://127.0.0.1/dns-query", "ttl.example.test.")
	if m == nil {
		t.Fatalf("status %s", resp.Status)
	}
	if got := answerData(m); !slices.Equal(got, []string{"192.0.2.60"}) {
		t.Errorf("answer = %v", got)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("protocol %s, want HTTP/2", resp.Proto)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/dns-message" {
		t.Errorf("Content-Type %q", ct)
	}
	cc := resp.Header.Get("Cache-Control")
	age, err := strconv.Atoi(strings.TrimPrefix(cc, "max-age="))
	if err != nil || age <= 0 || age > 60 {
		t.Errorf("Cache-Control %q, want max-age of the answer's TTL, at most 60", cc)
	}

	// POST, and a negative answer's max-age from its SOA.
	q := query("nonexistent.example.test.", dns.TypeA)
	b, _ := q.Pack()
	pr, err := f.http.Post("https://127.0.0.1/dns-query", "application/dns-message", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(pr.Body)
	pr.Body.Close()
	var pm dns.Msg
	if pr.StatusCode != http.StatusOK || pm.Unpack(body) != nil || pm.Rcode != dns.RcodeNameError || pm.Id != q.Id {
		t.Fatalf("POST: %s, %v", pr.Status, pm)
	}
	if cc := pr.Header.Get("Cache-Control"); cc == "max-age=0" || !strings.HasPrefix(cc, "max-age=") {
		t.Errorf("negative answer Cache-Control %q", cc)
	}
}

// TestDoHBadInput checks that every malformed request gets a clear 4xx
// and that none reaches the resolver.
func TestDoHBadInput(t *testing.T) {
	h := newHierarchy(t)
	r := newTestResolver(t, h, Config{})
	e, err := r.Encrypted(EncryptedConfig{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, errors.New("unused") }})
	if err != nil {
		t.Fatal(err)
	}
	good, _ := query("www.example.test.", dns.TypeA).Pack()
	b64 := base64.RawURLEncoding.EncodeToString
	resp, _ := func() ([]byte, error) { m := query("x.test.", dns.TypeA); m.Response = true; return m.Pack() }()
	tests := []struct {
		name, method, target, ctype string
		body                        []byte
		status                      int
		reason                      string
	}{
		{"no parameter", "GET", "/dns-query", "", nil, 400, "missing dns parameter"},
		{"bad base64", "GET", "/dns-query?dns=ab*cd", "", nil, 400, "base64url"},
		{"standard base64 alphabet", "GET", "/dns-query?dns=" + strings.ReplaceAll(b64(good), "-", "+") + "+/", "", nil, 400, "base64url"},
		{"not DNS", "GET", "/dns-query?dns=" + b64([]byte("hello, world, hello")), "", nil, 400, "not a DNS"},
		{"too short", "GET", "/dns-query?dns=" + b64([]byte{1, 2}), "", nil, 400, "shorter than a DNS header"},
		{"a response", "GET", "/dns-query?dns=" + b64(resp), "", nil, 400, "not a DNS query"},
		{"wrong content type", "POST", "/dns-query", "application/json", good, 415, "application/dns-message"},
		{"no content type", "POST", "/dns-query", "", good, 415, "application/dns-message"},
		{"oversized body", "POST", "/dns-query", "application/dns-message", make([]byte, 70000), 413, "too large"},
		{"oversized GET", "GET", "/dns-query?dns=" + b64(make([]byte, 5000)), "", nil, 413, "too large"},
		{"PUT", "PUT", "/dns-query", "application/dns-message", good, 405, "GET or POST"},
		{"other path", "GET", "/other?dns=" + b64(good), "", nil, 404, "/dns-query"},
		{"categories on a gateway", "GET", "/dns-query/ads?dns=" + b64(good), "", nil, 404, "/dns-query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.target, bytes.NewReader(tt.body))
			req.RemoteAddr = "127.0.0.1:40000"
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			w := httptest.NewRecorder()
			e.ServeHTTP(w, req)
			if w.Code != tt.status || !strings.Contains(w.Body.String(), tt.reason) {
				t.Errorf("got %d %q, want %d with %q", w.Code, w.Body.String(), tt.status, tt.reason)
			}
			if tt.status == 405 && w.Header().Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
	if n := r.cache.len(); n != 0 {
		t.Errorf("bad requests reached the resolver: %d cache entries", n)
	}
	// A client not allowed by Config.Allow is refused.
	req := httptest.NewRequest("GET", "/dns-query?dns="+b64(good), nil)
	req.RemoteAddr = "192.0.2.9:40000"
	w := httptest.NewRecorder()
	e.ServeHTTP(w, req)
	if w.Code != http.StatusForbidden {
		t.Errorf("outside client: %d, want 403", w.Code)
	}
}

// TestPublicCategories checks that a public service blocks what the
// client names by path and by host name, and nothing otherwise.
func TestPublicCategories(t *testing.T) {
	h := newHierarchy(t)
	r := blockingResolver(t, h, Config{
		// The client's address must not decide on a public service.
		BlockPolicy: func(netip.Addr) []string { return []string{"ads", "malware"} },
	})
	f := startEncrypted(t, r, EncryptedConfig{Public: true, Domain: "dns.test"})
	blocked := func(m *dns.Msg) bool {
		code, ok := ede(m)
		return m.Rcode == dns.RcodeNameError && ok && code == dns.ExtendedErrorCodeBlocked
	}
	doh := []struct {
		url             string
		example, hoster bool // blocked
	}{
		{"https://dns.test/dns-query", false, false},
		{"https://dns.test/dns-query/ads", true, false},
		{"https://dns.test/dns-query/malware", false, true},
		{"https://dns.test/dns-query/ads+malware", true, true},
		{"https://dns.test/dns-query/all", true, true},
		{"https://ads.dns.test/dns-query", true, false},
		{"https://ads-malware.dns.test/dns-query", true, true},
		{"https://ads.dns.test/dns-query/malware", false, true}, // the path wins
		{"https://127.0.0.1/dns-query", false, false},
	}
	for _, tt := range doh {
		for name, want := range map[string]bool{"www.example.test.": tt.example, "www.hoster.alt.": tt.hoster} {
			m, resp := f.dohGet(t, tt.url, name)
			if m == nil {
				t.Errorf("%s %s: %s", tt.url, name, resp.Status)
				continue
			}
			if blocked(m) != want {
				t.Errorf("%s %s: blocked %v, want %v (%v)", tt.url, name, blocked(m), want, m)
			}
		}
	}
	for _, url := range []string{"https://dns.test/dns-query/gambling", "https://dns.test/dns-query/ads+nonsense", "https://dns.test/dns-query/ads/x"} {
		if _, resp := f.dohGet(t, url, "www.example.test."); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %s, want 404", url, resp.Status)
		}
	}

	dot := []struct {
		sni             string
		example, hoster bool
	}{
		{"dns.test", false, false},
		{"ads.dns.test", true, false},
		{"malware.dns.test", false, true},
		{"all.dns.test", true, true},
	}
	for _, tt := range dot {
		for name, want := range map[string]bool{"www.example.test.": tt.example, "www.hoster.alt.": tt.hoster} {
			m, _, err := f.dotClient(tt.sni).Exchange(query(name, dns.TypeA), f.dot)
			if err != nil {
				t.Errorf("%s %s: %v", tt.sni, name, err)
				continue
			}
			if blocked(m) != want {
				t.Errorf("DoT %s %s: blocked %v, want %v", tt.sni, name, blocked(m), want)
			}
		}
	}
	// A host name naming an unknown category fails the handshake rather
	// than giving an unfiltered service.
	if _, _, err := f.dotClient("nonsense.dns.test").Exchange(query("www.example.test.", dns.TypeA), f.dot); err == nil {
		t.Error("unknown category in the host name: handshake succeeded")
	}
}

// TestEncryptedRateLimit checks the resolver's per-client rate limit
// over DoH (429 once spent) and the front ends' connection rate.
func TestEncryptedRateLimit(t *testing.T) {
	h := newHierarchy(t)
	clock := newTestClock() // stands still: no token comes back
	r := newTestResolver(t, h, Config{Clock: clock.now, RateLimit: 2})
	f := startEncrypted(t, r, EncryptedConfig{ConnRate: 1})
	codes := map[int]int{}
	for range 6 {
		_, resp := f.dohGet(t, "https://127.0.0.1/dns-query", "www.example.test.")
		codes[resp.StatusCode]++
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	if codes[200] != 4 || codes[429] != 2 {
		t.Errorf("statuses %v, want the burst of 4 answered and 2 refused with 429", codes)
	}
	// DoT and DoH share one connection limiter. The DoH queries above
	// took one connection (kept by HTTP/2) of the burst of 2, so of three
	// new DoT connections the last two are closed before the handshake.
	var failed int
	for range 3 {
		c, err := tls.Dial("tcp", f.dot, &tls.Config{RootCAs: f.files.Pool, ServerName: "dns.test"})
		if err != nil {
			failed++
			continue
		}
		c.Close()
	}
	if failed != 2 {
		t.Errorf("%d of 3 new connections refused, want 2 (burst of 2, one spent on DoH)", failed)
	}
}

// TestDoTOverRateLimit: beyond the client's rate limit a DoT query is
// refused at once on its connection, not left for the client's timeout
// (silence is for UDP, where an answer could be reflected).
func TestDoTOverRateLimit(t *testing.T) {
	h := newHierarchy(t)
	clock := newTestClock() // stands still: no token comes back
	r := newTestResolver(t, h, Config{Clock: clock.now, RateLimit: 1})
	f := startEncrypted(t, r, EncryptedConfig{})
	c := f.dotClient("dns.test")
	c.Timeout = time.Minute // long enough that a silent drop fails the test below as a timeout
	conn, err := c.Dial(f.dot)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var rcodes []int
	for range 3 {
		resp, _, err := c.ExchangeWithConn(query("www.example.test.", dns.TypeA), conn)
		if err != nil {
			t.Fatalf("query %d: %v", len(rcodes)+1, err)
		}
		rcodes = append(rcodes, resp.Rcode)
	}
	if rcodes[0] != dns.RcodeSuccess || rcodes[1] != dns.RcodeSuccess || rcodes[2] != dns.RcodeRefused {
		t.Errorf("rcodes %v, want the burst of 2 answered and the third REFUSED", rcodes)
	}
}

// TestEncryptedNothingLogged runs queries, failures and bad input over
// both front ends with debug logging and checks that no name and no
// client address is in the log.
func TestEncryptedNothingLogged(t *testing.T) {
	h := newHierarchy(t)
	logger, logs := logtest.New()
	r := blockingResolver(t, h, Config{Logger: logger, Allow: func(netip.Addr) bool { return true }})
	f := startEncrypted(t, r, EncryptedConfig{Public: true, Domain: "dns.test"})
	for _, name := range []string{"www.example.test.", "zqxsecret.example.test.", "zqxsecretfail.bad.test."} {
		f.dohGet(t, "https://dns.test/dns-query/ads", name)
		f.dotClient("ads.dns.test").Exchange(query(name, dns.TypeA), f.dot)
	}
	f.dohGet(t, "https://dns.test/dns-query/zqxsecretcat", "zqxsecretbadcat.test.")
	f.dotClient("zqxsecretcat.dns.test").Exchange(query("www.example.test.", dns.TypeA), f.dot)
	if c, err := net.Dial("tcp", f.doh); err == nil { // not TLS
		c.Write([]byte("GET /dns-query?dns=zqxsecret HTTP/1.1\r\n\r\n"))
		io.ReadAll(c)
		c.Close()
	}
	h.Stop()
	r.Resolve(context.Background(), "www.hoster.alt.", dns.TypeA) // something to log
	out := strings.ToLower(logs.String())
	if out == "" {
		t.Fatal("no log output at all: the test would prove nothing")
	}
	for _, s := range []string{"zqxsecret", "example.test", "hoster.alt", "127.0.0.1"} {
		if strings.Contains(out, s) {
			t.Errorf("log contains %q:\n%s", s, out)
		}
	}
}
