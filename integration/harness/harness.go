// Package harness runs the whole of Veil in one test process for the
// in-process end-to-end and audit tests: `veil serve` (control plane,
// website and built-in netstack gateway) over loopback, a DNS hierarchy
// for the gateway's resolver to recurse through, and proxy-mode clients
// whose WireGuard and HTTP traffic may come from a chosen loopback
// address. No root is needed.
package harness

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/net/proxy"

	"veil/internal/account"
	"veil/internal/apitypes"
	"veil/internal/client"
	"veil/internal/config"
	"veil/internal/service"
	"veil/internal/store"
	"veil/internal/wg"
)

// Options configures Start.
type Options struct {
	// DNS is the hierarchy the gateway's resolver recurses from; nil: the
	// built-in root hints (nothing resolves in a test).
	DNS *DNS
	// Source is the client's address: its API calls and WireGuard packets
	// come from it. Zero: the system's choice (127.0.0.1).
	Source netip.Addr
	// Logger receives every component's log; nil discards.
	Logger *slog.Logger
	// Config, if set, changes the configuration before the start.
	Config func(*config.Config)
}

// Env is a running service and what its clients need.
type Env struct {
	Svc    *service.Service
	Config config.Config
	// HTTP is a client whose connections come from Options.Source.
	HTTP   *http.Client
	source netip.Addr
	log    *slog.Logger
}

// Start starts `veil serve` in process: data in a temporary directory,
// HTTP on 127.0.0.1:0, the built-in gateway on a free UDP port and
// allowed to reach loopback (where the tests' servers are), no trial
// time. It waits until the gateway is online and stops it at cleanup.
func Start(tb testing.TB, opts Options) *Env {
	tb.Helper()
	cfg := config.Default()
	cfg.DataDir = filepath.Join(tb.TempDir(), "data")
	cfg.HTTP = "127.0.0.1:0"
	cfg.AdminHTTP = ""
	cfg.WGPort = 0
	cfg.EgressAllow = []string{"127.0.0.0/8"}
	cfg.TrialDays = 0
	cfg.LogLevel = "debug"
	if opts.DNS != nil {
		cfg.DNSRootHints, cfg.DNSUpstreamPort = opts.DNS.Hints, opts.DNS.Port
		cfg.DNSValidate = false // the test hierarchy's root is not signed
	}
	if opts.Config != nil {
		opts.Config(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svc, err := service.Start(context.Background(), cfg, log)
	if err != nil {
		tb.Fatalf("starting the service: %v", err)
	}
	tb.Cleanup(func() { svc.Stop() })
	e := &Env{Svc: svc, Config: cfg, source: opts.Source, log: log, HTTP: HTTPClient(opts.Source)}
	for {
		servers, err := (&client.API{Base: svc.URL(), HTTP: e.HTTP}).Servers(ctx)
		if err == nil {
			if _, err := client.PickServer(servers, ""); err == nil {
				return e
			}
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("the built-in gateway did not come online: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// HTTPClient returns a client whose connections come from src (zero: the
// system's choice), without keep-alive so that each request is a fresh
// connection.
func HTTPClient(src netip.Addr) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if src.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DialContext: d.DialContext, DisableKeepAlives: true, Proxy: nil,
	}}
}

// API returns an API client of the service, authorised with token.
func (e *Env) API(token string) *client.API {
	return &client.API{Base: e.Svc.URL(), Token: token, HTTP: e.HTTP}
}

// CreateAccount makes an account with days of paid time through the
// admin API and returns its access code.
func (e *Env) CreateAccount(tb testing.TB, days int) string {
	tb.Helper()
	var out apitypes.AccountCreated
	err := e.API(e.Svc.AdminToken).Do(context.Background(), http.MethodPost, "/api/v1/admin/accounts",
		apitypes.AccountCreateRequest{Days: days}, &out)
	if err != nil {
		tb.Fatalf("creating an account: %v", err)
	}
	return out.AccessCode
}

// Login logs a client in with code, saving its state in dir, as
// `veil login` does. From Options.Source when set (client.Login has no
// way to choose its source, so the same steps run here), else through
// client.Login itself.
func (e *Env) Login(tb testing.TB, dir, code string) *client.State {
	tb.Helper()
	ctx := context.Background()
	if !e.source.IsValid() {
		st, err := client.Login(ctx, dir, e.Svc.URL(), code)
		if err != nil {
			tb.Fatalf("login: %v", err)
		}
		return st
	}
	code, err := account.NormalizeCode(code)
	if err != nil {
		tb.Fatal(err)
	}
	sess, err := e.API("").Login(ctx, code)
	if err != nil {
		tb.Fatalf("login: %v", err)
	}
	key, err := wg.GenerateKey()
	if err != nil {
		tb.Fatal(err)
	}
	d, err := e.API(sess.Token).AddDevice(ctx, key.Public().Base64(), "audit-device")
	if err != nil {
		tb.Fatalf("registering the device: %v", err)
	}
	st := &client.State{Control: e.Svc.URL(), AccessCode: code, Token: sess.Token, Expires: sess.ExpiresAt,
		PrivateKey: key.Base64(), DeviceID: d.ID, IPv4: d.IPv4, IPv6: d.IPv6}
	if err := st.Save(dir); err != nil {
		tb.Fatal(err)
	}
	return st
}

// Up brings a proxy-mode tunnel up to the built-in gateway, with SOCKS5
// and HTTP proxies on free loopback ports, WireGuard from bindAddr (zero:
// wireguard-go's default bind). It is closed at cleanup.
func (e *Env) Up(tb testing.TB, st *client.State, bindAddr netip.Addr) *client.Tunnel {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	servers, err := (&client.API{Base: e.Svc.URL(), HTTP: e.HTTP}).Servers(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := client.PickServer(servers, "")
	if err != nil {
		tb.Fatal(err)
	}
	cfg := client.TunnelConfig{State: st, Server: srv, Mode: client.ModeProxy,
		SOCKS: "127.0.0.1:0", HTTPProxy: "127.0.0.1:0", AllowLoopback: true,
		Logger: e.log.With("component", "client")}
	if bindAddr.IsValid() {
		cfg.Bind = NewBind(bindAddr)
	}
	tun, err := client.Up(ctx, cfg)
	if err != nil {
		tb.Fatalf("bringing the tunnel up: %v", err)
	}
	tb.Cleanup(func() { tun.Close() })
	return tun
}

// AccountID finds the store's id of the account with code, through the
// data directory's secret as the control plane hashes codes.
func (e *Env) AccountID(tb testing.TB, code string) int64 {
	tb.Helper()
	secret, err := os.ReadFile(filepath.Join(e.Config.DataDir, service.SecretFile))
	if err != nil {
		tb.Fatal(err)
	}
	h, err := account.NewHasher(secret)
	if err != nil {
		tb.Fatal(err)
	}
	code, err = account.NormalizeCode(code)
	if err != nil {
		tb.Fatal(err)
	}
	acc, err := e.Svc.Store.AccountByCodeHash(context.Background(), h.Code(code))
	if err != nil {
		tb.Fatalf("finding the account: %v", err)
	}
	return acc.ID
}

// Expire moves the account's paid and trial time into the past, as if it
// had run out; the control plane's activity sync then drops its devices
// from the peer map.
func (e *Env) Expire(tb testing.TB, code string) {
	tb.Helper()
	past := time.Now().Add(-time.Hour)
	err := e.Svc.Store.UpdateAccount(context.Background(), e.AccountID(tb, code),
		store.AccountUpdate{PaidUntil: &past, TrialUntil: &past})
	if err != nil {
		tb.Fatalf("expiring the account: %v", err)
	}
}

// SOCKSClient returns an HTTP client that connects through the SOCKS5
// proxy at addr, host names resolved by the proxy, without keep-alive.
func SOCKSClient(tb testing.TB, addr string, timeout time.Duration) *http.Client {
	tb.Helper()
	d, err := proxy.SOCKS5("tcp", addr, nil, proxy.Direct)
	if err != nil {
		tb.Fatal(err)
	}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext: d.(proxy.ContextDialer).DialContext, DisableKeepAlives: true,
	}}
}

// Get fetches url and returns the body of a 200 answer.
func Get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), nil
}

// Echo is an HTTP server that answers with the caller's address.
type Echo struct {
	URL  string // http://addr:port
	Port int
	srv  *http.Server
}

// StartEcho starts an echo server on ip; it stops at cleanup.
func StartEcho(tb testing.TB, ip netip.Addr) *Echo {
	tb.Helper()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
	if err != nil {
		tb.Fatal(err)
	}
	e := &Echo{Port: ln.Addr().(*net.TCPAddr).Port}
	e.URL = "http://" + ln.Addr().String()
	e.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		io.WriteString(w, host)
	}), ErrorLog: nil}
	go e.srv.Serve(ln)
	tb.Cleanup(func() { e.srv.Close() })
	return e
}
