package controlplane_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"veil/internal/account"
	"veil/internal/apitypes"
	"veil/internal/controlplane"
	"veil/internal/logtest"
	"veil/internal/site/sitetest"
	"veil/internal/store"
	"veil/internal/store/storetest"
	"veil/internal/wg"
)

type env struct {
	url    string
	store  store.Store
	api    *controlplane.Server
	admin  string
	logs   *logtest.Buffer
	dbPath string
	now    *clock
	hasher *account.Hasher
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newEnv starts the API and the site over a real store: SQLite in a temp dir, or the
// given store; opts change the config before the server is made.
func newEnv(t testing.TB, st store.Store, opts ...func(*controlplane.Config)) *env {
	t.Helper()
	e := &env{logs: &logtest.Buffer{}, admin: sitetest.AdminToken, now: &clock{t: time.Now().UTC()}}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if st == nil {
		e.dbPath = filepath.Join(t.TempDir(), "veil.db")
		var err error
		st, err = store.Open(context.Background(), e.dbPath, log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
	}
	e.store = st
	cfg := sitetest.Config(t, st, log, e.now.Now)
	cfg.BillingSecrets = map[string]string{"testpay": testPaySecret}
	for _, o := range opts {
		o(&cfg)
	}
	e.hasher = cfg.Hasher
	e.api, e.url = sitetest.Serve(t, cfg)
	return e
}

// call sends a request and decodes the answer; it returns the status.
func (e *env) call(t testing.TB, method, path, token string, body any, out any) int {
	t.Helper()
	return callWith(t, http.DefaultClient, e.url, method, path, token, body, out)
}

func callWith(t testing.TB, hc *http.Client, base, method, path, token string, body any, out any) int {
	t.Helper()
	return sitetest.Call(t, hc, base, method, path, token, body, out)
}

func (e *env) newAccount(t testing.TB, days int) string {
	t.Helper()
	return e.site().NewAccount(t, days)
}

func (e *env) login(t testing.TB, code string) string {
	t.Helper()
	return e.site().Login(t, code)
}

// site is e as sitetest knows it.
func (e *env) site() *sitetest.Env { return &sitetest.Env{URL: e.url, API: e.api, Store: e.store} }

func newPub(t testing.TB) string {
	t.Helper()
	k, err := wg.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k.Public().Base64()
}

func (e *env) addGateway(t testing.TB, name string) string {
	t.Helper()
	var g apitypes.GatewayCreated
	req := apitypes.GatewayCreateRequest{Name: name, Location: "se-sto", Endpoint: "192.0.2.1:51820"}
	if st := e.call(t, "POST", "/api/v1/admin/gateways", e.admin, req, &g); st != 201 {
		t.Fatalf("add gateway: %d", st)
	}
	return g.Token
}

func TestSessions(t *testing.T) {
	e := newEnv(t, nil)
	code := e.newAccount(t, 30)
	if len(code) != 16 {
		t.Fatalf("access code %q is not 16 digits", code)
	}

	var s apitypes.Session
	if st := e.call(t, "POST", "/api/v1/sessions", "", apitypes.SessionRequest{AccessCode: account.FormatCode(code)}, &s); st != 201 || s.Token == "" {
		t.Fatalf("login with the grouped code: %d %+v", st, s)
	}
	var acc apitypes.Account
	if st := e.call(t, "GET", "/api/v1/account", s.Token, nil, &acc); st != 200 || acc.Plan != "premium" || !acc.Active {
		t.Fatalf("account: %d %+v", st, acc)
	}

	// A wrong code, a malformed one and a deleted account's code all get
	// the same status and the same body.
	other := e.newAccount(t, 1)
	otherTok := e.login(t, other)
	if st := e.call(t, "DELETE", "/api/v1/account", otherTok, nil, nil); st != 204 {
		t.Fatalf("delete account: %d", st)
	}
	var bodies []string
	for _, c := range []string{"0000000000000000", "12", other} {
		var er apitypes.Error
		st := e.call(t, "POST", "/api/v1/sessions", "", apitypes.SessionRequest{AccessCode: c}, &er)
		if st != 401 {
			t.Errorf("code %q: status %d, want 401", c, st)
		}
		bodies = append(bodies, er.Error)
	}
	if bodies[0] != bodies[1] || bodies[1] != bodies[2] {
		t.Errorf("failed logins answer differently: %q", bodies)
	}
	if st := e.call(t, "GET", "/api/v1/account", otherTok, nil, nil); st != 401 {
		t.Errorf("a deleted account's session still works: %d", st)
	}

	// Sessions expire.
	e.now.Add(2 * time.Hour)
	if st := e.call(t, "GET", "/api/v1/account", s.Token, nil, nil); st != 401 {
		t.Errorf("expired session: %d, want 401", st)
	}
}

func TestLoginThrottled(t *testing.T) {
	e := newEnv(t, nil)
	code := e.newAccount(t, 30)
	for range 10 {
		e.call(t, "POST", "/api/v1/sessions", "", apitypes.SessionRequest{AccessCode: "1111111111111111"}, nil)
	}
	if st := e.call(t, "POST", "/api/v1/sessions", "", apitypes.SessionRequest{AccessCode: code}, nil); st != 429 {
		t.Fatalf("after 10 failures: %d, want 429", st)
	}
}

// TestSessionLimit: an account holds at most store.MaxSessions sessions;
// each login beyond them ends the oldest.
func TestSessionLimit(t *testing.T) {
	e := newEnv(t, nil)
	code := e.newAccount(t, 30)
	var toks []string
	for range store.MaxSessions + 3 {
		toks = append(toks, e.login(t, code))
		e.now.Add(time.Second)
	}
	for i, tok := range toks {
		want := 200
		if i < 3 {
			want = 401
		}
		if st := e.call(t, "GET", "/api/v1/account", tok, nil, nil); st != want {
			t.Errorf("session %d of %d: %d, want %d", i+1, len(toks), st, want)
		}
	}
}

// TestDeviceKeyTaken: a key another account holds gets the very answer
// a key of this account's own gets, on create and on rekey, and the answer
// does not say that the key is registered.
func TestDeviceKeyTaken(t *testing.T) {
	e := newEnv(t, nil)
	owner, stranger := e.login(t, e.newAccount(t, 30)), e.login(t, e.newAccount(t, 30))
	key := newPub(t)
	if st := e.call(t, "POST", "/api/v1/devices", owner, apitypes.DeviceRequest{PublicKey: key}, nil); st != 201 {
		t.Fatal(st)
	}
	var dev apitypes.Device
	if st := e.call(t, "POST", "/api/v1/devices", stranger, apitypes.DeviceRequest{PublicKey: newPub(t)}, &dev); st != 201 {
		t.Fatal(st)
	}
	answer := func(method, path, tok string) string {
		var er apitypes.Error
		st := e.call(t, method, path, tok, apitypes.DeviceRequest{PublicKey: key}, &er)
		return fmt.Sprint(st, " ", er.Error)
	}
	own := answer("POST", "/api/v1/devices", owner)
	for name, got := range map[string]string{
		"another account's key":          answer("POST", "/api/v1/devices", stranger),
		"rekey to another account's key": answer("PUT", "/api/v1/devices/"+strconv.FormatInt(dev.ID, 10), stranger),
	} {
		if got != own {
			t.Errorf("%s: %q, want the answer to this account's own key, %q", name, got, own)
		}
	}
	if !strings.HasPrefix(own, "409 ") || strings.Contains(own, "registered") || strings.Contains(own, "exists") || strings.Contains(own, "another") {
		t.Errorf("answer to a taken key %q: want a 409 that tells nothing about the key", own)
	}
}

// TestContentType: a JSON body must be declared exactly as JSON, with at
// most a utf-8 charset; anything else is 415 and does nothing.
func TestContentType(t *testing.T) {
	e := newEnv(t, nil)
	for ct, want := range map[string]int{
		"application/json":                   401,
		"application/json; charset=utf-8":    401,
		"Application/JSON;charset=UTF-8":     401,
		"application/jsonx":                  415,
		"application/json-seq":               415,
		"application/json; charset=latin1":   415,
		"application/json; profile=x":        415,
		"application/json; charset=utf-8; x": 415,
		"text/plain":                         415,
		"application/x-www-form-urlencoded":  415,
		"":                                   415,
	} {
		req, _ := http.NewRequest("POST", e.url+"/api/v1/sessions", strings.NewReader(`{"access_code":"1234123412341234"}`))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Content-Type %q: %d, want %d", ct, resp.StatusCode, want)
		}
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t, nil)
	code := e.newAccount(t, 30)
	tok := e.login(t, code)
	huge := strings.Repeat("9", 500_000)
	tests := []struct {
		name, method, path, token, body string
		want                            int
		wantMsg                         string
	}{
		{"huge access code", "POST", "/api/v1/sessions", "", `{"access_code":"` + huge + `"}`, 400, "larger than"},
		{"malformed json", "POST", "/api/v1/sessions", "", `{"access_code":`, 400, "truncated JSON"},
		{"syntax error", "POST", "/api/v1/sessions", "", `{"access_code" 1}`, 400, "malformed JSON at byte"},
		{"unknown field", "POST", "/api/v1/sessions", "", `{"access_code":"1","admin":true}`, 400, `unknown field "admin"`},
		{"trailing data", "POST", "/api/v1/sessions", "", `{"access_code":"1"} {}`, 400, "unexpected data"},
		{"empty body", "POST", "/api/v1/sessions", "", ``, 400, "empty body"},
		{"wrong type", "POST", "/api/v1/sessions", "", `{"access_code":5}`, 400, "wrong type"},
		{"bad key", "POST", "/api/v1/devices", tok, `{"public_key":"nope"}`, 400, "public_key"},
		{"bad email", "PATCH", "/api/v1/account", tok, `{"email":"not an address"}`, 400, "email"},
		{"bad device id", "DELETE", "/api/v1/devices/x", tok, ``, 404, "no such device"},
		{"no token", "GET", "/api/v1/account", "", ``, 401, "log in"},
		{"bad gateway", "POST", "/api/v1/admin/gateways", e.admin, `{"name":"Bad Name","location":"se-sto","endpoint":"1.2.3.4:5"}`, 400, "name"},
		{"not admin", "POST", "/api/v1/admin/accounts", tok, `{}`, 401, "admin"},
		{"bad since", "GET", "/api/v1/gateway/peers?since=x", e.addGateway(t, "gw"), ``, 400, "since"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var er apitypes.Error
			st := e.call(t, tt.method, tt.path, tt.token, tt.body, &er)
			if st != tt.want || !strings.Contains(er.Error, tt.wantMsg) {
				t.Errorf("got %d %q, want %d containing %q", st, er.Error, tt.want, tt.wantMsg)
			}
			if strings.Contains(er.Error, "99999999") {
				t.Error("the answer echoes the access code")
			}
		})
	}
	// Nothing was lost or added by the bad requests.
	if n, err := e.store.CountAccounts(context.Background()); err != nil || n != 1 {
		t.Errorf("accounts after bad requests: %d, %v", n, err)
	}
	var acc apitypes.Account
	if e.call(t, "GET", "/api/v1/account", tok, nil, &acc); acc.Devices != 0 || acc.Email != "" {
		t.Errorf("account changed by bad requests: %+v", acc)
	}
}

func TestDevices(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login(t, e.newAccount(t, 30))
	var first apitypes.Device
	if st := e.call(t, "POST", "/api/v1/devices", tok, apitypes.DeviceRequest{PublicKey: newPub(t), Name: "laptop"}, &first); st != 201 {
		t.Fatalf("add device: %d", st)
	}
	if first.IPv4 != "10.64.0.2/32" || first.IPv6 != "fd7a:7665:696c::2/128" || first.Name != "laptop" {
		t.Errorf("first device: %+v", first)
	}
	for i := range 4 {
		if st := e.call(t, "POST", "/api/v1/devices", tok, apitypes.DeviceRequest{PublicKey: newPub(t)}, nil); st != 201 {
			t.Fatalf("device %d: %d", i+2, st)
		}
	}
	var er apitypes.Error
	if st := e.call(t, "POST", "/api/v1/devices", tok, apitypes.DeviceRequest{PublicKey: newPub(t)}, &er); st != 409 || !strings.Contains(er.Error, "5 devices") {
		t.Errorf("sixth device: %d %q", st, er.Error)
	}
	// Rotation keeps the addresses.
	newKey := newPub(t)
	var rotated apitypes.Device
	if st := e.call(t, "PUT", fmt.Sprintf("/api/v1/devices/%d", first.ID), tok, apitypes.DeviceRequest{PublicKey: newKey}, &rotated); st != 200 {
		t.Fatalf("rekey: %d", st)
	}
	if rotated.PublicKey != newKey || rotated.IPv4 != first.IPv4 {
		t.Errorf("rekeyed device: %+v", rotated)
	}
	// Another account cannot touch this device.
	otherTok := e.login(t, e.newAccount(t, 30))
	if st := e.call(t, "DELETE", fmt.Sprintf("/api/v1/devices/%d", first.ID), otherTok, nil, nil); st != 404 {
		t.Errorf("deleting another account's device: %d", st)
	}
	// Deletion frees the address; the next registration takes a fresh
	// one above the highest held (the freed one rests until the pool's
	// top is taken, which the store's tests cover).
	if st := e.call(t, "DELETE", fmt.Sprintf("/api/v1/devices/%d", first.ID), tok, nil, nil); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	var again apitypes.Device
	if st := e.call(t, "POST", "/api/v1/devices", otherTok, apitypes.DeviceRequest{PublicKey: newPub(t)}, &again); st != 201 && st != 200 {
		t.Fatalf("register after a deletion: %d", st)
	}
	if again.IPv4 == "" || again.IPv4 == first.IPv4 {
		t.Errorf("registration after a deletion got %q (freed: %s)", again.IPv4, first.IPv4)
	}
	var list []apitypes.Device
	if e.call(t, "GET", "/api/v1/devices", tok, nil, &list); len(list) != 4 {
		t.Errorf("devices listed: %d, want 4", len(list))
	}
}

// pollPeers long-polls like a gateway and returns the answer.
func pollPeers(t testing.TB, base, token string, since int64, wait time.Duration) apitypes.PeerMap {
	t.Helper()
	var m apitypes.PeerMap
	path := fmt.Sprintf("/api/v1/gateway/peers?since=%d&wait=%s", since, wait)
	if st := callWith(t, http.DefaultClient, base, "GET", path, token, nil, &m); st != 200 {
		t.Fatalf("peers: %d", st)
	}
	return m
}

func TestPeerMap(t *testing.T) {
	e := newEnv(t, nil)
	gw := e.addGateway(t, "gw1")
	tok := e.login(t, e.newAccount(t, 30))
	key := newPub(t)
	var d apitypes.Device
	e.call(t, "POST", "/api/v1/devices", tok, apitypes.DeviceRequest{PublicKey: key}, &d)

	full := pollPeers(t, e.url, gw, 0, 0)
	if !full.Full || len(full.Peers) != 1 || full.Peers[0].PublicKey != key ||
		strings.Join(full.Peers[0].AllowedIPs, ",") != "10.64.0.2/32,fd7a:7665:696c::2/128" {
		t.Fatalf("full map: %+v", full)
	}

	// Nothing changed: the poll times out with the same version.
	if m := pollPeers(t, e.url, gw, full.Version, 50*time.Millisecond); m.Version != full.Version || len(m.Peers) != 0 {
		t.Fatalf("idle poll: %+v", m)
	}

	// A waiting gateway receives a deletion as a delta.
	got := make(chan apitypes.PeerMap, 1)
	go func() { got <- pollPeers(t, e.url, gw, full.Version, 30*time.Second) }()
	time.Sleep(100 * time.Millisecond) // let the poll start waiting; correctness does not depend on it
	e.call(t, "DELETE", fmt.Sprintf("/api/v1/devices/%d", d.ID), tok, nil, nil)
	select {
	case m := <-got:
		if m.Full || len(m.Removed) != 1 || m.Removed[0] != key || m.Version <= full.Version {
			t.Fatalf("delta: %+v", m)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("waiting gateway never woke")
	}

	// Expiry removes peers by itself: an account past its paid time leaves
	// the map at the next activity sync.
	tok2 := e.login(t, e.newAccount(t, 1))
	key2 := newPub(t)
	e.call(t, "POST", "/api/v1/devices", tok2, apitypes.DeviceRequest{PublicKey: key2}, nil)
	m := pollPeers(t, e.url, gw, 0, 0)
	if len(m.Peers) != 1 || m.Peers[0].PublicKey != key2 {
		t.Fatalf("map with the short account: %+v", m)
	}
	e.now.Add(48 * time.Hour)
	m2 := pollPeers(t, e.url, gw, m.Version, 20*time.Second)
	if len(m2.Removed) != 1 || m2.Removed[0] != key2 {
		t.Fatalf("expired account still in the map: %+v", m2)
	}
}

func TestGatewayReport(t *testing.T) {
	e := newEnv(t, nil)
	gw := e.addGateway(t, "gw1")
	pub := newPub(t)
	var cfg apitypes.GatewayConfig
	if st := e.call(t, "POST", "/api/v1/gateway/report", gw, apitypes.GatewayReport{PublicKey: pub, Peers: 250, RxBytes: 1, TxBytes: 2}, &cfg); st != 200 {
		t.Fatalf("report: %d", st)
	}
	if cfg.TunnelIPv4 != "10.64.0.1/10" || cfg.TunnelIPv6 != "fd7a:7665:696c::1/64" {
		t.Errorf("gateway config: %+v", cfg)
	}
	var servers []apitypes.Server
	e.call(t, "GET", "/api/v1/servers", "", nil, &servers)
	if len(servers) != 1 || servers[0].PublicKey != pub || servers[0].Load != 25 || !servers[0].Online || servers[0].Country != "se" {
		t.Errorf("servers: %+v", servers)
	}
	// Egress addresses: recognised as the gateway's beside its endpoint.
	rep := apitypes.GatewayReport{PublicKey: pub, Peers: 250, Egress: []string{"198.51.100.8", "::ffff:203.0.113.9", "2001:db8::8"}}
	if st := e.call(t, "POST", "/api/v1/gateway/report", gw, rep, nil); st != 200 {
		t.Fatalf("report with egress: %d", st)
	}
	addrs, err := e.api.GatewayAddrs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"192.0.2.1", "198.51.100.8", "203.0.113.9", "2001:db8::8"} {
		if addrs[netip.MustParseAddr(a)] != "gw1" {
			t.Errorf("GatewayAddrs[%s] = %q, want gw1 (all: %v)", a, addrs[netip.MustParseAddr(a)], addrs)
		}
	}
	if len(addrs) != 4 {
		t.Errorf("GatewayAddrs = %v, want the endpoint and three egress addresses", addrs)
	}
	tooMany := make([]string, apitypes.MaxEgress+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("198.51.100.%d", i+1)
	}
	for _, bad := range [][]string{{"gw.example"}, {"fe80::1%eth0"}, tooMany} {
		if st := e.call(t, "POST", "/api/v1/gateway/report", gw, apitypes.GatewayReport{PublicKey: pub, Egress: bad}, nil); st != 400 {
			t.Errorf("report with egress %q: %d, want 400", bad, st)
		}
	}
	// The TLS and QUIC transports reach the server list, with their pin.
	pin := base64.StdEncoding.EncodeToString(make([]byte, 32))
	rep = apitypes.GatewayReport{PublicKey: pub, TLSPort: 443, QUICPort: 8443, CertPin: pin}
	if st := e.call(t, "POST", "/api/v1/gateway/report", gw, rep, nil); st != 200 {
		t.Fatalf("report with transports: %d", st)
	}
	servers = nil
	e.call(t, "GET", "/api/v1/servers", "", nil, &servers)
	if len(servers) != 1 || servers[0].TLSPort != 443 || servers[0].QUICPort != 8443 || servers[0].CertPin != pin {
		t.Errorf("servers after a report with transports: %+v", servers)
	}
	for _, bad := range []apitypes.GatewayReport{
		{PublicKey: pub, TLSPort: 443},
		{PublicKey: pub, TLSPort: 443, CertPin: "not a pin"},
		{PublicKey: pub, QUICPort: 70000, CertPin: pin},
		{PublicKey: pub, TLSPort: -1, CertPin: pin},
	} {
		if st := e.call(t, "POST", "/api/v1/gateway/report", gw, bad, nil); st != 400 {
			t.Errorf("report %+v: %d, want 400", bad, st)
		}
	}
	// A per-peer field is refused: the report is aggregate only.
	if st := e.call(t, "POST", "/api/v1/gateway/report", gw, `{"peers":1,"peer_endpoints":["198.51.100.7:1234"]}`, nil); st != 400 {
		t.Errorf("report with per-peer data: %d, want 400", st)
	}
	if st := e.call(t, "POST", "/api/v1/gateway/report", "wrong", apitypes.GatewayReport{}, nil); st != 401 {
		t.Errorf("report with a wrong token: %d", st)
	}
}

// TestServerListResolvesEndpoints: a gateway whose endpoint is a name is
// listed with the addresses it resolves to (through the system resolver:
// localhost), one whose endpoint is an address without.
func TestServerListResolvesEndpoints(t *testing.T) {
	e := newEnv(t, nil)
	e.addGateway(t, "byaddr")
	req := apitypes.GatewayCreateRequest{Name: "byname", Location: "se-sto", Endpoint: "localhost:51999"}
	if st := e.call(t, "POST", "/api/v1/admin/gateways", e.admin, req, nil); st != 201 {
		t.Fatalf("add gateway: %d", st)
	}
	var servers []apitypes.Server
	e.call(t, "GET", "/api/v1/servers", "", nil, &servers)
	for _, s := range servers {
		switch s.Name {
		case "byaddr":
			if s.EndpointAddrs != nil {
				t.Errorf("%s: endpoint_addrs %v for an address endpoint", s.Name, s.EndpointAddrs)
			}
		case "byname":
			if !slices.Contains(s.EndpointAddrs, "127.0.0.1:51999") && !slices.Contains(s.EndpointAddrs, "[::1]:51999") {
				t.Errorf("%s: endpoint_addrs %v, want localhost's address with port 51999", s.Name, s.EndpointAddrs)
			}
		default:
			t.Errorf("unexpected server %q", s.Name)
		}
	}
}

// TestNoClientAddressLogged drives the API from a distinctive loopback
// address with debug logging and finds that address nowhere: not in the
// log output, not in the database file (promise P1).
func TestNoClientAddressLogged(t *testing.T) {
	const src = "127.9.8.7"
	e := newEnv(t, nil)
	hc := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)},
	}).DialContext}}
	code := e.newAccount(t, 30)
	var s apitypes.Session
	callWith(t, hc, e.url, "POST", "/api/v1/sessions", "", apitypes.SessionRequest{AccessCode: "0000000000000000"}, nil)
	callWith(t, hc, e.url, "POST", "/api/v1/sessions", "", `{"bad`, nil)
	if st := callWith(t, hc, e.url, "POST", "/api/v1/sessions", "", apitypes.SessionRequest{AccessCode: code}, &s); st != 201 {
		t.Fatalf("login from %s: %d", src, st)
	}
	callWith(t, hc, e.url, "POST", "/api/v1/devices", s.Token, apitypes.DeviceRequest{PublicKey: newPub(t), Name: "phone"}, nil)
	callWith(t, hc, e.url, "GET", "/api/v1/account", s.Token, nil, nil)
	callWith(t, hc, e.url, "GET", "/api/v1/account/export", s.Token, nil, nil)
	callWith(t, hc, e.url, "GET", "/api/v1/servers", "", nil, nil)
	callWith(t, hc, e.url, "GET", "/nope", "", nil, nil)
	e.store.Close()

	if !strings.Contains(e.logs.String(), "level=") {
		t.Fatal("no log output at all: the test would prove nothing")
	}
	raw := []byte{127, 9, 8, 7}
	if strings.Contains(e.logs.String(), src) {
		t.Errorf("log output holds %s:\n%s", src, e.logs.String())
	}
	files, _ := filepath.Glob(e.dbPath + "*")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(src)) || bytes.Contains(b, raw) {
			t.Errorf("%s holds the client address", filepath.Base(f))
		}
	}
}

// FuzzDecode throws arbitrary bodies at every JSON endpoint: the answer
// must be a clean 4xx or success, never a 500 or a panic.
func FuzzDecode(f *testing.F) {
	e := newEnv(f, nil)
	tok := e.login(f, e.newAccount(f, 30))
	gw := e.addGateway(f, "gw")
	for _, s := range []string{`{}`, `{"access_code":"1234567890123456"}`, `{"public_key":"x","name":"y"}`,
		`{"email":"a@b.c"}`, `{"peers":-1}`, `[`, `null`, `{"days":99999999999}`} {
		f.Add(s)
	}
	paths := []struct{ method, path, token string }{
		{"POST", "/api/v1/sessions", ""},
		{"POST", "/api/v1/devices", tok},
		{"PATCH", "/api/v1/account", tok},
		{"POST", "/api/v1/gateway/report", gw},
		{"POST", "/api/v1/admin/accounts", e.admin},
		{"POST", "/api/v1/admin/gateways", e.admin},
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, p := range paths {
			st := e.call(t, p.method, p.path, p.token, body, nil)
			if st >= 500 {
				t.Errorf("%s %s with %q: %d", p.method, p.path, body, st)
			}
		}
	})
}

func TestDeviceBlock(t *testing.T) {
	e := newEnv(t, nil)
	gw := e.addGateway(t, "gw1")
	tok := e.login(t, e.newAccount(t, 30))
	var d apitypes.Device
	if st := e.call(t, "POST", "/api/v1/devices", tok, apitypes.DeviceRequest{PublicKey: newPub(t), Block: []string{"ads"}}, &d); st != 201 {
		t.Fatalf("add device: %d", st)
	}
	if strings.Join(d.Block, ",") != "ads" {
		t.Errorf("created device block = %q", d.Block)
	}
	full := pollPeers(t, e.url, gw, 0, 0)
	if len(full.Peers) != 1 || strings.Join(full.Peers[0].Block, ",") != "ads" {
		t.Fatalf("peer map = %+v", full)
	}
	path := fmt.Sprintf("/api/v1/devices/%d", d.ID)
	if st := e.call(t, "PATCH", path, tok, `{"block":["trackers","malware"]}`, &d); st != 200 || strings.Join(d.Block, ",") != "malware,trackers" {
		t.Fatalf("patch: %d %+v", st, d)
	}
	delta := pollPeers(t, e.url, gw, full.Version, 20*time.Second)
	if delta.Full || len(delta.Peers) != 1 || strings.Join(delta.Peers[0].Block, ",") != "malware,trackers" {
		t.Errorf("delta after patch = %+v", delta)
	}
	var er apitypes.Error
	if st := e.call(t, "PATCH", path, tok, `{"block":["crypto"]}`, &er); st != 400 || !strings.Contains(er.Error, "unknown category") {
		t.Errorf("unknown category: %d %q", st, er.Error)
	}
	if st := e.call(t, "PATCH", path, tok, `{"block":[]}`, &d); st != 200 || len(d.Block) != 0 {
		t.Errorf("clearing: %d %+v", st, d)
	}
}

// TestPeerMapAcrossProcesses runs two API servers over one PostgreSQL, as
// several `veil serve` processes would: a gateway long-polling one of them
// sees a device added through the other.
func TestPeerMapAcrossProcesses(t *testing.T) {
	dsn := storetest.PostgresURL(t)
	open := func() store.Store {
		st, err := store.Open(context.Background(), dsn, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	a, b := newEnv(t, open()), newEnv(t, open())
	gw := a.addGateway(t, "gw1")
	tok := a.login(t, a.newAccount(t, 30))
	a.call(t, "POST", "/api/v1/devices", tok, apitypes.DeviceRequest{PublicKey: newPub(t)}, nil)
	start := pollPeers(t, b.url, gw, 0, 0)
	if start.Version == 0 || len(start.Peers) != 1 {
		t.Fatalf("B's full map: %+v", start)
	}

	got := make(chan apitypes.PeerMap, 1)
	go func() { got <- pollPeers(t, b.url, gw, start.Version, 30*time.Second) }()
	key := newPub(t)
	if st := a.call(t, "POST", "/api/v1/devices", tok, apitypes.DeviceRequest{PublicKey: key}, nil); st != 201 {
		t.Fatalf("add device through A: %d", st)
	}
	select {
	case m := <-got:
		if m.Full || len(m.Peers) != 1 || m.Peers[0].PublicKey != key {
			t.Fatalf("B's gateway got %+v", m)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("a gateway waiting on B never saw the device added through A")
	}
}
