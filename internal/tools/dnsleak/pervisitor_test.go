package dnsleak

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"veil/internal/visitor"
)

// TestPerVisitor: one visitor cannot start tests without end and so fill
// the server's MaxTests for everyone.
func TestPerVisitor(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	who := visitor.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")})
	s, _ := startServer(t, Config{Clock: clock.Now, PerVisitor: 3, MaxTests: 5, Visitors: who})
	mux := http.NewServeMux()
	s.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	start := func(forwardedFor string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/dnsleak", nil)
		req.Header.Set("X-Forwarded-For", forwardedFor)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for i := range 3 {
		if resp := start("198.51.100.1"); resp.StatusCode != http.StatusCreated {
			t.Fatalf("test %d of a visitor: %d, want 201", i+1, resp.StatusCode)
		}
	}
	resp := start("198.51.100.1")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a visitor's 4th test over PerVisitor 3: %d, want 429 with Retry-After", resp.StatusCode)
	}
	if resp := start("198.51.100.2"); resp.StatusCode != http.StatusCreated {
		t.Fatalf("another visitor: %d, want 201", resp.StatusCode)
	}
	if n := s.Len(); n != 4 {
		t.Errorf("%d tests held, want 4 (the refused one holds none)", n)
	}
	clock.Add(MaxTTL)
	if resp := start("198.51.100.1"); resp.StatusCode != http.StatusCreated {
		t.Fatalf("the first visitor once its tests expired: %d, want 201", resp.StatusCode)
	}
}
