package controlplane_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"testing"

	"veil/internal/apitypes"
	"veil/internal/controlplane"
	"veil/internal/visitor"
)

// trusting makes the test server believe X-Forwarded-For from the given
// peers (the test client is on loopback).
func trusting(prefixes ...string) func(*controlplane.Config) {
	var ps []netip.Prefix
	for _, p := range prefixes {
		ps = append(ps, netip.MustParsePrefix(p))
	}
	return func(c *controlplane.Config) { c.Visitors = visitor.New(ps) }
}

// post sends body as JSON from the visitor a proxy names in
// X-Forwarded-For, and returns the status.
func post(t *testing.T, url, path, forwardedFor string, body any) int {
	t.Helper()
	j, _ := json.Marshal(body)
	req, err := http.NewRequest("POST", url+path, bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", forwardedFor)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestThrottlesBehindProxy: behind a trusted proxy, ten visitors failing
// to log in do not lock an eleventh out; the throttles count visitors,
// not the proxy.
func TestThrottlesBehindProxy(t *testing.T) {
	e := newEnv(t, nil, trusting("127.0.0.0/8", "::1/128"))
	code := e.newAccount(t, 30)
	for i := range 10 {
		if st := post(t, e.url, "/api/v1/sessions", fmt.Sprintf("198.51.100.%d", i+1), apitypes.SessionRequest{AccessCode: "1111111111111111"}); st != 401 {
			t.Fatalf("bad login %d: %d, want 401", i+1, st)
		}
	}
	if st := post(t, e.url, "/api/v1/sessions", "198.51.100.11", apitypes.SessionRequest{AccessCode: code}); st != 201 {
		t.Fatalf("an eleventh visitor's valid code: %d, want 201", st)
	}
	// One visitor is still throttled on its own failures.
	for range 10 {
		post(t, e.url, "/api/v1/sessions", "198.51.100.12", apitypes.SessionRequest{AccessCode: "1111111111111111"})
	}
	if st := post(t, e.url, "/api/v1/sessions", "192.0.2.1, 198.51.100.12", apitypes.SessionRequest{AccessCode: code}); st != 429 {
		t.Fatalf("a throttled visitor writing its own X-Forwarded-For hop: %d, want 429", st)
	}

	// Recovery requests (5 an hour per source) likewise.
	for i := range 5 {
		if st := post(t, e.url, "/api/v1/account/recover", fmt.Sprintf("203.0.113.%d", i+1), map[string]string{"email": "nobody@example.org"}); st != 202 {
			t.Fatalf("recovery %d: %d, want 202", i+1, st)
		}
	}
	if st := post(t, e.url, "/api/v1/account/recover", "203.0.113.6", map[string]string{"email": "nobody@example.org"}); st != 202 {
		t.Fatalf("a sixth visitor's recovery: %d, want 202", st)
	}
	for range 5 {
		post(t, e.url, "/api/v1/account/recover", "203.0.113.7", map[string]string{"email": "nobody@example.org"})
	}
	if st := post(t, e.url, "/api/v1/account/recover", "203.0.113.7", map[string]string{"email": "nobody@example.org"}); st != 429 {
		t.Fatalf("one visitor's sixth recovery: %d, want 429", st)
	}
}

// TestUntrustedForwardedForIgnored: a peer that is not a trusted proxy
// cannot escape the throttles by writing X-Forwarded-For.
func TestUntrustedForwardedForIgnored(t *testing.T) {
	e := newEnv(t, nil, trusting("192.0.2.0/24"))
	code := e.newAccount(t, 30)
	for i := range 10 {
		post(t, e.url, "/api/v1/sessions", fmt.Sprintf("198.51.100.%d", i+1), apitypes.SessionRequest{AccessCode: "1111111111111111"})
	}
	if st := post(t, e.url, "/api/v1/sessions", "198.51.100.11", apitypes.SessionRequest{AccessCode: code}); st != 429 {
		t.Fatalf("after 10 failures from one peer under made-up X-Forwarded-For: %d, want 429", st)
	}
	for i := range 5 {
		post(t, e.url, "/api/v1/account/recover", fmt.Sprintf("203.0.113.%d", i+1), map[string]string{"email": "nobody@example.org"})
	}
	if st := post(t, e.url, "/api/v1/account/recover", "203.0.113.6", map[string]string{"email": "nobody@example.org"}); st != 429 {
		t.Fatalf("a sixth recovery from one peer under made-up X-Forwarded-For: %d, want 429", st)
	}
}
