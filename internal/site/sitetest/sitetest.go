// Package sitetest serves the control plane's API and the site's pages
// on one mux over a real store, as the service does, for the tests of
// either; and a browser that posts the site's forms.
package sitetest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"veil/internal/account"
	"veil/internal/apitypes"
	"veil/internal/controlplane"
	"veil/internal/device"
	"veil/internal/site"
	"veil/internal/store"
	"veil/internal/web"
)

// AdminToken is the admin token of Config's servers.
const AdminToken = "admin-token-for-tests"

// Config is a control plane's config for tests over st: a fixed server
// key, the default pools, 5 devices, a 7-day trial, hour-long sessions.
func Config(t testing.TB, st store.Store, log *slog.Logger, now func() time.Time) controlplane.Config {
	t.Helper()
	hasher, err := account.NewHasher(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	pools, err := device.ParsePools("10.64.0.0/10", "fd7a:7665:696c::/64")
	if err != nil {
		t.Fatal(err)
	}
	return controlplane.Config{
		Store: st, Hasher: hasher, Pools: pools, AdminToken: AdminToken,
		MaxDevices: 5, TrialDays: 7, SessionTTL: time.Hour, Logger: log, Now: now,
		CheckoutURL: "https://pay.example/veil?client_reference_id={ref}",
	}
}

// Serve starts a control plane from cfg (following the store until the
// test ends) and serves its API and the site, behind web.Localize as the
// service serves them. It returns the server and the base URL.
func Serve(t testing.TB, cfg controlplane.Config) (*controlplane.Server, string) {
	t.Helper()
	api := controlplane.New(cfg)
	s, err := site.New(site.Config{API: api, Visitors: cfg.Visitors, SessionTTL: cfg.SessionTTL, Logger: cfg.Logger})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { api.Run(ctx, 50*time.Millisecond); close(done) }()
	mux := http.NewServeMux()
	api.Register(mux)
	s.Register(mux)
	srv := httptest.NewServer(web.Localize(mux))
	t.Cleanup(func() { srv.Close(); cancel(); <-done })
	return api, srv.URL
}

// Env is a served control plane and site over SQLite in a temporary
// directory.
type Env struct {
	URL   string
	API   *controlplane.Server
	Store store.Store
}

// New serves a control plane and the site over a new SQLite store; opts
// change Config's config first.
func New(t testing.TB, opts ...func(*controlplane.Config)) *Env {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "veil.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := Config(t, st, nil, nil)
	for _, o := range opts {
		o(&cfg)
	}
	api, url := Serve(t, cfg)
	return &Env{URL: url, API: api, Store: st}
}

// Call sends a request to the API and decodes the answer; it returns
// the status.
func (e *Env) Call(t testing.TB, method, path, token string, body, out any) int {
	t.Helper()
	return Call(t, http.DefaultClient, e.URL, method, path, token, body, out)
}

// NewAccount makes an account with days of paid time and returns its
// access code.
func (e *Env) NewAccount(t testing.TB, days int) string {
	t.Helper()
	var out apitypes.AccountCreated
	if st := e.Call(t, "POST", "/api/v1/admin/accounts", AdminToken, apitypes.AccountCreateRequest{Days: days}, &out); st != 201 {
		t.Fatalf("create account: %d", st)
	}
	return out.AccessCode
}

// Login opens a session with code and returns its token.
func (e *Env) Login(t testing.TB, code string) string {
	t.Helper()
	var s apitypes.Session
	if st := e.Call(t, "POST", "/api/v1/sessions", "", apitypes.SessionRequest{AccessCode: code}, &s); st != 201 {
		t.Fatalf("login: %d", st)
	}
	return s.Token
}

// Call sends a request with hc to base+path, a JSON body unless body is
// a string (sent as it is), and decodes the answer into out; it returns
// the status.
func Call(t testing.TB, hc *http.Client, base, method, path, token string, body, out any) int {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %d %q: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode
}
