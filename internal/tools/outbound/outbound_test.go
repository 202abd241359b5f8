package outbound

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
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

	// With a Source, the visitor is whom it names (a proxy's client).
	q = NewQuota(1, time.Minute, func(r *http.Request) (netip.Addr, error) {
		return netip.ParseAddr(r.Header.Get("X-Test-Visitor"))
	})
	a, b := req("10.0.0.1:1"), req("10.0.0.1:1")
	a.Header.Set("X-Test-Visitor", "198.51.100.1")
	b.Header.Set("X-Test-Visitor", "198.51.100.2")
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
