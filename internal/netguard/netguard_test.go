package netguard

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"syscall"
	"testing"
)

func TestPermit(t *testing.T) {
	pool := netip.MustParsePrefix("10.64.0.0/10")
	tests := []struct {
		name  string
		guard Guard
		addr  string
		ok    bool
	}{
		{"public v4", Guard{}, "93.184.216.34", true},
		{"public v6", Guard{}, "2606:4700::1111", true},
		{"loopback v4", Guard{}, "127.0.0.1", false},
		{"loopback v4 other", Guard{}, "127.8.9.10", false},
		{"loopback v6", Guard{}, "::1", false},
		{"mapped loopback", Guard{}, "::ffff:127.0.0.1", false},
		{"metadata", Guard{}, "169.254.169.254", false},
		{"link-local v6", Guard{}, "fe80::1", false},
		{"link-local v6 zone", Guard{}, "fe80::1%eth0", false},
		{"rfc1918 10", Guard{}, "10.1.2.3", false},
		{"rfc1918 172", Guard{}, "172.20.0.1", false},
		{"rfc1918 192", Guard{}, "192.168.1.1", false},
		{"cgnat", Guard{}, "100.100.100.100", false},
		{"ula", Guard{}, "fd00::1", false},
		{"multicast v4", Guard{}, "224.0.0.1", false},
		{"multicast v6", Guard{}, "ff02::1", false},
		{"unspecified v4", Guard{}, "0.0.0.0", false},
		{"unspecified v6", Guard{}, "::", false},
		{"broadcast", Guard{}, "255.255.255.255", false},
		{"doc v4", Guard{}, "192.0.2.1", false},
		{"doc v6", Guard{}, "2001:db8::1", false},
		{"nat64", Guard{}, "64:ff9b::a00:1", false},
		{"invalid", Guard{}, "", false},
		{"allowed loopback", Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, "127.0.0.1", true},
		{"allowed doc", Guard{Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}, "192.0.2.7", true},
		{"allow does not leak", Guard{Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}, "192.0.3.7", true},
		{"pool denied", Guard{Deny: []netip.Prefix{pool}}, "10.64.0.5", false},
		{"deny beats allow", Guard{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Deny: []netip.Prefix{pool}}, "10.64.0.5", false},
		{"allow outside pool", Guard{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Deny: []netip.Prefix{pool}}, "10.1.0.5", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var addr netip.Addr
			if tt.addr != "" {
				addr = netip.MustParseAddr(tt.addr)
			}
			err := tt.guard.Permit(addr)
			if tt.ok && err != nil {
				t.Fatalf("Permit(%s) = %v, want nil", tt.addr, err)
			}
			if !tt.ok && !errors.Is(err, ErrDenied) {
				t.Fatalf("Permit(%s) = %v, want ErrDenied", tt.addr, err)
			}
		})
	}
}

func TestSpecialIsCopy(t *testing.T) {
	s := Special()
	s[0] = netip.MustParsePrefix("1.1.1.1/32")
	if err := (Guard{}).Permit(netip.MustParseAddr("0.0.0.1")); err == nil {
		t.Fatal("modifying Special's result changed the guard")
	}
}

func TestDialContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)

	tests := []struct {
		name  string
		guard Guard
		ok    bool
	}{
		{"loopback refused", Guard{}, false},
		{"loopback allowed", Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := &http.Client{Transport: &http.Transport{DialContext: tt.guard.DialContext}}
			resp, err := client.Get(srv.URL)
			if tt.ok {
				if err != nil {
					t.Fatalf("GET: %v", err)
				}
				resp.Body.Close()
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatal("GET succeeded, want refusal")
			}
			if !errors.Is(err, ErrDenied) {
				t.Fatalf("GET error %v, want ErrDenied", err)
			}
		})
	}
}

// TestDialerKeepsControl checks that a caller's own Control still runs.
func TestDialerKeepsControl(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	called := false
	d := &net.Dialer{Control: func(string, string, syscall.RawConn) error { called = true; return nil }}
	g := Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	c, err := g.Dialer(d).DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if !called {
		t.Fatal("the dialer's own Control did not run")
	}
}
