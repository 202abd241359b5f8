package whois

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"veil/internal/netguard"
	"veil/internal/tools/outbound"
	"veil/internal/web"
)

// servers runs whois servers on one port at several loopback addresses
// (a whois referral names a host, not a port): answers maps each address
// to its reply; every question asked is recorded.
type servers struct {
	port int
	mu   sync.Mutex
	got  map[string][]string
}

func startServers(t *testing.T, answers map[string]string) *servers {
	t.Helper()
	for try := 0; try < 20; try++ {
		s := &servers{got: map[string][]string{}}
		var lns []net.Listener
		ok := true
		for ip := range answers {
			addr := ip + ":" + strconv.Itoa(s.port)
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				ok = false
				break
			}
			if s.port == 0 {
				s.port = ln.Addr().(*net.TCPAddr).Port
			}
			lns = append(lns, ln)
		}
		if !ok {
			for _, ln := range lns {
				ln.Close()
			}
			continue
		}
		for _, ln := range lns {
			t.Cleanup(func() { ln.Close() })
			ip := ln.Addr().(*net.TCPAddr).IP.String()
			go s.serve(ln, ip, answers[ip])
		}
		return s
	}
	t.Fatal("no port free on every loopback address")
	return nil
}

func (s *servers) serve(ln net.Listener, ip, answer string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			line, _ := bufio.NewReader(c).ReadString('\n')
			s.mu.Lock()
			s.got[ip] = append(s.got[ip], line)
			s.mu.Unlock()
			fmt.Fprint(c, answer)
		}()
	}
}

func (s *servers) asked(ip string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got[ip]
}

var loopback = netguard.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}

func TestLookupFollowsReferrals(t *testing.T) {
	srv := startServers(t, map[string]string{
		"127.0.0.1": "% IANA WHOIS server\r\nrefer:        127.0.0.2\r\n\r\ndomain:       ORG\r\n",
		"127.0.0.2": "Domain Name: example.org\r\nRegistrar WHOIS Server: 127.0.0.3\r\n",
		"127.0.0.3": "Domain Name: example.org\r\nRegistrant: REDACTED FOR PRIVACY\r\n",
	})
	c := &Client{Root: "127.0.0.1", Port: srv.port, Dial: loopback.DialContext}
	res, err := c.Lookup(context.Background(), " Example.ORG. ")
	if err != nil {
		t.Fatal(err)
	}
	if res.Query != "example.org" || len(res.Answers) != 3 {
		t.Fatalf("result %+v, want three answers for example.org", res)
	}
	for i, ip := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		if res.Answers[i].Server != ip {
			t.Errorf("answer %d from %s, want %s", i, res.Answers[i].Server, ip)
		}
		if q := srv.asked(ip); len(q) != 1 || q[0] != "example.org\r\n" {
			t.Errorf("%s was asked %q", ip, q)
		}
	}
	if !strings.Contains(res.Answers[2].Text, "REDACTED FOR PRIVACY\n") || strings.Contains(res.Answers[2].Text, "\r") {
		t.Errorf("registrar's answer %q", res.Answers[2].Text)
	}
}

func TestLookupStops(t *testing.T) {
	srv := startServers(t, map[string]string{
		"127.0.0.1": "refer: 127.0.0.2\n",
		"127.0.0.2": "refer: 127.0.0.2\nwhois: 127.0.0.1\n" + strings.Repeat("x", 5000), // a loop, and long
		"127.0.0.3": "",
	})
	c := &Client{Root: "127.0.0.1", Port: srv.port, Dial: loopback.DialContext, MaxBytes: 1000}
	res, err := c.Lookup(context.Background(), "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Answers) != 2 || len(srv.asked("127.0.0.2")) != 1 {
		t.Fatalf("%d answers, registry asked %d times: a referral loop was followed", len(res.Answers), len(srv.asked("127.0.0.2")))
	}
	if a := res.Answers[1].Text; len(a) > 1100 || !strings.HasSuffix(a, "(cut: the answer is longer)") {
		t.Errorf("a 5 kB answer over a 1000-byte limit came back as %d bytes", len(a))
	}

	// A registry that does not answer leaves what IANA said, and says so.
	srv2 := startServers(t, map[string]string{"127.0.0.1": "refer: 127.0.0.9\n"})
	c2 := &Client{Root: "127.0.0.1", Port: srv2.port, Dial: loopback.DialContext}
	res, err = c2.Lookup(context.Background(), "AS64500")
	if err != nil || len(res.Answers) != 2 || !strings.HasPrefix(res.Answers[1].Text, "(no answer:") {
		t.Fatalf("%+v, %v: want IANA's answer and the registry's failure", res, err)
	}
}

// TestGuard: the servers a referral names are dialled through the egress
// guard, so an answer cannot send the tool to the host's own services.
func TestGuard(t *testing.T) {
	srv := startServers(t, map[string]string{"127.0.0.1": "refer: 127.0.0.2\n", "127.0.0.2": "secret\n"})
	c := &Client{Root: "127.0.0.1", Port: srv.port, Dial: netguard.Guard{}.DialContext}
	if _, err := c.Lookup(context.Background(), "example.org"); !errors.Is(err, netguard.ErrDenied) {
		t.Fatalf("lookup through a guard refusing loopback: %v, want ErrDenied", err)
	}
	if len(srv.asked("127.0.0.1")) != 0 {
		t.Fatal("the refused server was reached")
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"example.org":      "example.org",
		"WWW.Example.Org":  "www.example.org",
		"bücher.example":   "xn--bcher-kva.example",
		"192.0.2.1":        "192.0.2.1",
		"2001:DB8::1":      "2001:db8::1",
		"::ffff:192.0.2.1": "192.0.2.1",
		"as64500":          "AS64500",
	} {
		if got, err := Normalize(in); err != nil || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "org", "a b.example", "example.org\r\nother.org", "-x-.example\x00", strings.Repeat("a.", 130) + "org", "AS99999999999"} {
		if got, err := Normalize(bad); err == nil {
			t.Errorf("Normalize(%q) = %q, want an error", bad, got)
		}
	}
}

func TestHandler(t *testing.T) {
	srv := startServers(t, map[string]string{"127.0.0.1": "domain: EXAMPLE\n<script>alert(1)</script>\n"})
	h := &Handler{Client: &Client{Root: "127.0.0.1", Port: srv.port, Dial: loopback.DialContext}, Quota: outbound.NewQuota(2, time.Minute, nil)}
	mux := http.NewServeMux()
	h.Register(mux)
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = "198.51.100.7:4000"
		mux.ServeHTTP(rec, req)
		return rec
	}
	if rec := get("/whois"); rec.Code != 200 || !strings.Contains(rec.Body.String(), `name="q"`) {
		t.Fatalf("the empty form: %d", rec.Code)
	}
	rec := get("/whois?q=example.org")
	body := rec.Body.String()
	if rec.Code != 200 || !strings.Contains(body, "domain: EXAMPLE") || strings.Contains(body, "<script>alert") {
		t.Fatalf("page: %d, escaped answer missing or markup passed through:\n%s", rec.Code, body)
	}
	if csp := rec.Header().Get("Content-Security-Policy"); csp == "" {
		t.Error("the page has no Content-Security-Policy")
	}
	rec = get("/api/v1/whois?q=example.org")
	var res Result
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || len(res.Answers) != 1 {
		t.Fatalf("API: %d %s", rec.Code, rec.Body)
	}
	if rec := get("/api/v1/whois?q=not+a+name"); rec.Code != 400 {
		t.Errorf("a bad question: %d, want 400", rec.Code)
	}
	// Two lookups used the quota of 2 (a bad question costs none).
	rec = get("/whois?q=example.org")
	if rec.Code != http.StatusTooManyRequests || !strings.Contains(rec.Body.String(), "too many requests") || rec.Header().Get("Content-Security-Policy") == "" {
		t.Fatalf("over the quota: %d %s", rec.Code, rec.Body)
	}
}

// TestPageInTheVisitorsLanguage: the form, a refused question and a
// quota refusal are in the page's language; the API's error stays
// English.
func TestPageInTheVisitorsLanguage(t *testing.T) {
	h := &Handler{Client: &Client{Root: "127.0.0.1", Port: 1, Dial: loopback.DialContext}, Quota: outbound.NewQuota(1, time.Minute, nil)}
	mux := http.NewServeMux()
	h.Register(mux)
	srv := web.Localize(mux)
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = "198.51.100.9:4000"
		srv.ServeHTTP(rec, req)
		return rec
	}
	for _, tt := range []struct {
		path string
		code int
		want []string
	}{
		{"/fr/whois", 200, []string{"Nom de domaine, adresse IP ou numéro d’AS", `action="/fr/whois"`}},
		{"/de/whois?q=a+b", 400, []string{"fragen Sie nach einem Domainnamen"}},
		{"/tr/whois?q=example.org", 502, []string{"whois sunucusu yanıt vermedi"}},
		{"/es/whois?q=example.org", 429, []string{"demasiadas solicitudes desde su dirección"}},
	} {
		rec := get(tt.path)
		for _, w := range tt.want {
			if rec.Code != tt.code || !strings.Contains(rec.Body.String(), w) {
				t.Errorf("%s: %d, want %d with %q", tt.path, rec.Code, tt.code, w)
			}
		}
	}
	rec := get("/api/v1/whois?q=a+b")
	if !strings.Contains(rec.Body.String(), `"ask for a domain name, an IP address or an AS number (AS64500)"`) {
		t.Errorf("API error: %s", rec.Body)
	}
}
