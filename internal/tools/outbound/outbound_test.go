package outbound

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"veil/internal/visitor"
)

func TestQuota(t *testing.T) {
	req := func(remote string) *http.Request {
		r := httptest.NewRequest("GET", "/whois?q=example.org", nil)
		r.RemoteAddr = remote
		return r
	}
	q := NewQuota(2, time.Minute, nil)
	for i := range 2 {
		if ok, _ := q.Take(req("192.0.2.1:1000")); !ok {
			t.Fatalf("use %d refused", i+1)
		}
	}
	if ok, wait := q.Take(req("192.0.2.1:2000")); ok || wait <= 0 {
		t.Fatalf("third use from the same address (another port): allowed=%v wait=%v", ok, wait)
	}
	if ok, _ := q.Take(req("192.0.2.2:1000")); !ok {
		t.Fatal("another visitor was refused")
	}

	// Behind a trusted proxy, the visitor is the client it names.
	q = NewQuota(1, time.Minute, visitor.New([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}))
	a, b := req("10.0.0.1:1"), req("10.0.0.1:1")
	a.Header.Set("X-Forwarded-For", "198.51.100.1")
	b.Header.Set("X-Forwarded-For", "198.51.100.2")
	if ok, _ := q.Take(a); !ok {
		t.Fatal("first visitor refused")
	}
	if ok, _ := q.Take(b); !ok {
		t.Fatal("a second visitor behind the same proxy was refused")
	}
	if ok, _ := q.Take(a); ok {
		t.Fatal("the first visitor's second use was allowed over a limit of 1")
	}
}

func TestBeginBoundsRunning(t *testing.T) {
	q := NewQuota(1, time.Minute, nil)
	var dones []func()
	for i := range MaxRunning {
		r := httptest.NewRequest("GET", "/ping", nil)
		r.RemoteAddr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), 1).String()
		done, _, err := q.Begin(r)
		if err != nil {
			t.Fatalf("visitor %d refused: %v", i+1, err)
		}
		dones = append(dones, done)
	}
	r := httptest.NewRequest("GET", "/ping", nil)
	r.RemoteAddr = "198.51.100.1:1"
	if _, status, err := q.Begin(r); err == nil || status != http.StatusServiceUnavailable {
		t.Fatalf("use beyond %d running: status %d, err %v; want 503", MaxRunning, status, err)
	}
	dones[0]()
	r = httptest.NewRequest("GET", "/ping", nil)
	r.RemoteAddr = "198.51.100.2:1"
	if _, _, err := q.Begin(r); err != nil {
		t.Fatalf("a slot given back was not reused: %v", err)
	}
	r = httptest.NewRequest("GET", "/ping", nil)
	r.RemoteAddr = "192.0.2.1:1"
	if _, status, _ := q.Begin(r); status != http.StatusTooManyRequests {
		t.Fatalf("a visitor over its quota got %d, want 429", status)
	}
}
