package service

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"veil/internal/config"
)

func testConfig(t testing.TB, dir string) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.HTTP = "127.0.0.1:0"
	cfg.AdminHTTP = ""
	cfg.WGPort = 0
	return cfg
}

// TestGatewayKeySurvivesRestart: the built-in gateway keeps its key in the
// data directory, so clients' tunnels outlive a restart of serve.
func TestGatewayKeySurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	start := func() *Service {
		svc, err := Start(context.Background(), testConfig(t, dir), nil)
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	svc := start()
	first := svc.Gateway.PublicKey()
	if err := svc.Stop(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, GatewayKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("gateway key file: %v, mode %v", err, fi.Mode().Perm())
	}
	svc = start()
	defer svc.Stop()
	if svc.Gateway.PublicKey() != first {
		t.Fatal("the built-in gateway has a new key after a restart")
	}
}

// TestDataDirSecrets: the files that make up the service's identity are
// created once, private to the operator.
func TestDataDirSecrets(t *testing.T) {
	dir := t.TempDir()
	svc, err := Start(context.Background(), testConfig(t, dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	svc.Stop()
	for _, name := range []string{SecretFile, AdminTokenFile, GatewayKeyFile, SQLiteFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
}

// TestGatewayAddrsRefresh: only the first answer waits for the gateway
// list; a stale list is replaced in the background while requests answer
// from the old one, and a failed fetch keeps the old list.
func TestGatewayAddrsRefresh(t *testing.T) {
	a1, a2 := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	release := make(chan struct{})
	calls := make(chan int, 10)
	n := 0
	g := &gatewayAddrs{list: func(context.Context) (map[netip.Addr]string, error) {
		n++
		calls <- n
		switch n {
		case 1:
			return map[netip.Addr]string{a1: "gw1"}, nil
		case 2:
			<-release // a slow refresh
			return map[netip.Addr]string{a2: "gw2"}, nil
		}
		return nil, errors.New("store down")
	}}
	if name, ok := g.lookup(a1); !ok || name != "gw1" {
		t.Fatalf("first lookup = %q, %v; want gw1 from the first list", name, ok)
	}
	g.mu.Lock()
	g.fetched = time.Now().Add(-time.Minute)
	g.mu.Unlock()
	if name, ok := g.lookup(a1); !ok || name != "gw1" {
		t.Fatalf("lookup during a slow refresh = %q, %v; want the old list's gw1 at once", name, ok)
	}
	<-calls
	<-calls // the refresh has started and waits
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if name, ok := g.lookup(a2); ok && name == "gw2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the refreshed list never took the old one's place")
		}
		time.Sleep(10 * time.Millisecond)
	}
	g.mu.Lock()
	g.fetched = time.Now().Add(-time.Minute)
	g.mu.Unlock()
	g.lookup(a2) // starts a refresh that fails
	<-calls
	time.Sleep(50 * time.Millisecond)
	if name, ok := g.lookup(a2); !ok || name != "gw2" {
		t.Errorf("after a failed refresh: %q, %v; want the last good list", name, ok)
	}
}

// TestToolsNeverReachTunnelPools: an operator who opens 10.0.0.0/8 to the
// tools does not open the tunnel pool inside it, as for the gateways.
func TestToolsNeverReachTunnelPools(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.EgressAllow = []string{"10.0.0.0/8"}
	svc, err := Start(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Stop() })
	for host, want := range map[string]int{
		"10.64.0.7":         http.StatusForbidden, // a device's tunnel address
		"fd7a:7665:696c::7": http.StatusForbidden,
		"::ffff:10.64.0.7":  http.StatusForbidden, // the same, IPv4-mapped
		"64:ff9b::a40:7":    http.StatusForbidden, // the same, through NAT64
		"168.63.129.16":     http.StatusForbidden, // a cloud's wire server
		"::168.63.129.16":   http.StatusForbidden,
	} {
		resp, err := http.Get(svc.URL() + "/api/v1/ping?count=1&host=" + host)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("ping %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
	resp, err := http.Get(svc.URL() + "/proxy?url=" + url.QueryEscape("http://10.64.0.7/"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(b), "not reached from here") {
		t.Errorf("proxy to a tunnel address: %d", resp.StatusCode)
	}
}

// TestMissingPage: the whole site answers a path with no route with its
// own 404 page, in the layout, for a browser.
func TestMissingPage(t *testing.T) {
	svc, err := Start(context.Background(), testConfig(t, t.TempDir()), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Stop() })
	req, _ := http.NewRequest("GET", svc.URL()+"/no/such/page", nil)
	req.Header.Set("Accept", "text/html")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(b), `href="/support"`) {
		t.Errorf("missing page: %d %s", resp.StatusCode, b)
	}
}
