package webproxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"veil/internal/netguard"
	"veil/internal/tools/outbound"
	"veil/internal/visitor"
	"veil/internal/visitor/visitortest"
)

var loopbackOnly = netguard.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}

// TestShare: one visitor holding its share of the fetch slots does not
// stop another visitor behind the same proxy.
func TestShare(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 4)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		io.WriteString(w, "done")
	}))
	defer origin.Close()
	defer close(release)
	who := visitor.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")})
	srv := proxy(t, &Handler{Guard: loopbackOnly, Visitors: who, MaxFetches: 3, MaxPerVisitor: 2})
	at := func(path string) string { return srv.URL + "/proxy?url=" + url.QueryEscape(origin.URL+path) }
	a := map[string]string{"X-Forwarded-For": "198.51.100.1"}
	for range 2 {
		req, _ := http.NewRequest("GET", at("/slow"), nil)
		req.Header.Set("X-Forwarded-For", a["X-Forwarded-For"])
		go func() {
			if resp, err := http.DefaultTransport.RoundTrip(req); err == nil {
				resp.Body.Close()
			}
		}()
		<-started
	}
	if resp, _ := get(t, at("/fast"), a); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a visitor's third fetch at once: %d, want 429 with Retry-After over its share of 2", resp.StatusCode)
	}
	if resp, body := get(t, at("/fast"), map[string]string{"X-Forwarded-For": "198.51.100.2"}); resp.StatusCode != 200 || !strings.Contains(body, "done") {
		t.Fatalf("a second visitor while the first holds its share: %d, want 200", resp.StatusCode)
	}
}

// TestSlowReaderLosesSlot: a visitor that does not read the proxied answer
// gives its slot back once the write deadline passes.
func TestSlowReaderLosesSlot(t *testing.T) {
	// Larger than loopback's socket buffers take, so the unread answer
	// cannot be written out whole and must hold its slot.
	big := strings.Repeat("x", 48<<20)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if r.URL.Path == "/big" {
			io.WriteString(w, big)
		}
	}))
	defer origin.Close()
	srv := proxy(t, &Handler{Guard: loopbackOnly, Quota: outbound.NewQuota(1<<20, time.Hour, nil), MaxFetches: 1, MaxBytes: 64 << 20, Pace: visitor.Pace{Step: 64 << 10, Within: 100 * time.Millisecond}})
	at := func(path string) string { return srv.URL + "/proxy?url=" + url.QueryEscape(origin.URL+path) }

	u, _ := url.Parse(at("/big"))
	visitortest.Stall(t, srv.Listener.Addr().String(), u.RequestURI())
	small := func() int {
		resp, _ := get(t, at("/small"), nil)
		return resp.StatusCode
	}
	visitortest.WaitStatus(t, "a fetch while the unread one runs", http.StatusServiceUnavailable, small)
	visitortest.WaitStatus(t, "a fetch after the unread one's deadline", http.StatusOK, small)
}
