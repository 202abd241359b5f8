package service

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"veil/internal/apitypes"
)

// TestBehindTrustedProxy: with trusted_proxies set, the throttles, the
// quotas and My IP all see the visitor the proxy names, not the proxy.
func TestBehindTrustedProxy(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.TrustedProxies = []string{"127.0.0.0/8"}
	svc, err := Start(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Stop() })
	send := func(method, path, token, forwardedFor string, body any) (int, []byte) {
		t.Helper()
		var r io.Reader
		if body != nil {
			j, _ := json.Marshal(body)
			r = bytes.NewReader(j)
		}
		req, _ := http.NewRequest(method, svc.URL()+path, r)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.Header.Set("X-Forwarded-For", forwardedFor)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	var acc apitypes.AccountCreated
	st, b := send("POST", "/api/v1/admin/accounts", svc.AdminToken, "", apitypes.AccountCreateRequest{Days: 30})
	if err := json.Unmarshal(b, &acc); st != 201 || err != nil {
		t.Fatalf("creating an account: %d %s", st, b)
	}
	for i := range 10 {
		send("POST", "/api/v1/sessions", "", fmt.Sprintf("198.51.100.%d", i+1), apitypes.SessionRequest{AccessCode: "1111111111111111"})
	}
	if st, b := send("POST", "/api/v1/sessions", "", "198.51.100.11", apitypes.SessionRequest{AccessCode: acc.AccessCode}); st != 201 {
		t.Fatalf("an eleventh visitor after ten others failed: %d %s, want 201", st, b)
	}

	if _, b := send("GET", "/api/v1/ip", "", "203.0.113.9", nil); !strings.Contains(string(b), `"ip":"203.0.113.9"`) {
		t.Errorf("My IP behind the proxy: %s", b)
	}

	// Ping's quota (20 per 10 minutes) counts each visitor; a tunnel
	// address is refused after the quota is charged.
	for range 20 {
		send("GET", "/api/v1/ping?count=1&host=10.64.0.7", "", "203.0.113.1", nil)
	}
	if st, _ := send("GET", "/api/v1/ping?count=1&host=10.64.0.7", "", "203.0.113.1", nil); st != http.StatusTooManyRequests {
		t.Errorf("a visitor's 21st ping: %d, want 429", st)
	}
	if st, _ := send("GET", "/api/v1/ping?count=1&host=10.64.0.7", "", "203.0.113.2", nil); st != http.StatusForbidden {
		t.Errorf("another visitor's first ping (of a tunnel address): %d, want 403", st)
	}
}
