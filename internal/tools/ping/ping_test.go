package ping

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"veil/internal/netguard"
	"veil/internal/tools/outbound"
)

var loopback = netguard.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}

// icmpOrSkip skips the test where this process may open no ICMP socket.
func icmpOrSkip(t *testing.T) {
	t.Helper()
	c, _, err := listen(false)
	if err != nil {
		t.Skip("no ICMP socket for this user (run as root, as make test does in CI, or widen net.ipv4.ping_group_range)")
	}
	c.Close()
}

func TestPingLoopback(t *testing.T) {
	icmpOrSkip(t)
	p := &Pinger{Guard: loopback, Interval: 10 * time.Millisecond,
		Resolve: func(ctx context.Context, host string) ([]netip.Addr, error) {
			if host == "here.test" {
				return []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("127.0.0.2")}, nil
			}
			return nil, errors.New("no such host")
		}}
	res, err := p.Ping(context.Background(), "127.0.0.1", 3)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 3 || res.Received != 3 || len(res.RTTs) != 3 || res.Min < 0 || res.Max < res.Min || res.Avg < res.Min || res.Avg > res.Max {
		t.Fatalf("ping 127.0.0.1: %+v", res)
	}
	// A name: its first address the guard permits is pinged (192.0.2.1,
	// a documentation range, is not).
	res, err = p.Ping(context.Background(), "Here.Test.", 1)
	if err != nil || res.Address != "127.0.0.2" || res.Received != 1 || res.Host != "here.test" {
		t.Fatalf("ping here.test: %+v, %v", res, err)
	}
	if _, err := p.Ping(context.Background(), "nowhere.test", 1); err == nil || !strings.Contains(err.Error(), "does not resolve") {
		t.Fatalf("a name that does not resolve: %v", err)
	}
	// Counts are bounded.
	res, err = p.Ping(context.Background(), "127.0.0.1", 50)
	if err != nil || res.Sent != MaxCount {
		t.Fatalf("count 50 sent %d, want %d: %v", res.Sent, MaxCount, err)
	}
}

func TestPingIPv6Loopback(t *testing.T) {
	icmpOrSkip(t)
	if c, _, err := listen(true); err != nil {
		t.Skip("no ICMPv6 socket here")
	} else {
		c.Close()
	}
	p := &Pinger{Guard: loopback, Interval: 10 * time.Millisecond}
	res, err := p.Ping(context.Background(), "::1", 2)
	if err != nil || res.Received != 2 {
		t.Fatalf("ping ::1: %+v, %v", res, err)
	}
}

// TestGuard: what the guard refuses is never pinged, whatever the name.
func TestGuard(t *testing.T) {
	p := &Pinger{Resolve: func(ctx context.Context, host string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("169.254.169.254"), netip.MustParseAddr("::1")}, nil
	}}
	for _, host := range []string{"127.0.0.1", "10.1.2.3", "::ffff:127.0.0.1", "metadata.test"} {
		if res, err := p.Ping(context.Background(), host, 1); !errors.Is(err, netguard.ErrDenied) || res.Sent != 0 {
			t.Errorf("ping %s: %+v, %v; want ErrDenied and nothing sent", host, res, err)
		}
	}
}

func TestCheckHost(t *testing.T) {
	for in, want := range map[string]string{"Example.ORG": "example.org", "bücher.example": "xn--bcher-kva.example", " 192.0.2.1 ": "192.0.2.1", "fe80::1%eth0": "fe80::1"} {
		if got, err := CheckHost(in); err != nil || got != want {
			t.Errorf("CheckHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "a b", "x\ny.example", strings.Repeat("a.", 130) + "org"} {
		if got, err := CheckHost(bad); err == nil {
			t.Errorf("CheckHost(%q) = %q, want an error", bad, got)
		}
	}
}

func TestHandler(t *testing.T) {
	icmpOrSkip(t)
	h := &Handler{Pinger: &Pinger{Guard: loopback, Interval: 10 * time.Millisecond}, Quota: outbound.NewQuota(2, time.Minute, nil)}
	mux := http.NewServeMux()
	h.Register(mux)
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = "198.51.100.7:4000"
		mux.ServeHTTP(rec, req)
		return rec
	}
	rec := get("/ping?host=127.0.0.1")
	if body := rec.Body.String(); rec.Code != 200 || !strings.Contains(body, "4 sent, 4 received") {
		t.Fatalf("page: %d\n%s", rec.Code, body)
	}
	rec = get("/api/v1/ping?host=127.0.0.1&count=2")
	var res Result
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || res.Received != 2 {
		t.Fatalf("API: %d %s", rec.Code, rec.Body)
	}
	for path, code := range map[string]int{
		"/api/v1/ping?host=127.0.0.1&count=9": 400,
		"/api/v1/ping?host=a+b":               400,
		"/api/v1/ping?host=127.0.0.1":         429, // the quota of 2 is used up
	} {
		if rec := get(path); rec.Code != code {
			t.Errorf("%s: %d %s, want %d", path, rec.Code, rec.Body, code)
		}
	}
	h2 := &Handler{Pinger: &Pinger{}}
	mux2 := http.NewServeMux()
	h2.Register(mux2)
	rec = httptest.NewRecorder()
	mux2.ServeHTTP(rec, httptest.NewRequest("GET", "/ping?host=10.0.0.1", nil))
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "not pinged from here") {
		t.Fatalf("a private address: %d", rec.Code)
	}
}
