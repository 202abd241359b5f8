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
		{"wire server", Guard{}, "168.63.129.16", false},
		{"wire server mapped", Guard{}, "::ffff:168.63.129.16", false},
		{"beside the wire server", Guard{}, "168.63.129.17", true},
		{"compatible loopback", Guard{}, "::127.0.0.1", false},
		{"compatible metadata", Guard{}, "::169.254.169.254", false},
		{"compatible wire server", Guard{}, "::168.63.129.16", false},
		{"compatible public", Guard{}, "::93.184.216.34", true},
		{"mapped metadata", Guard{}, "::ffff:169.254.169.254", false},
		{"mapped public", Guard{}, "::ffff:93.184.216.34", true},
		{"nat64 private", Guard{}, "64:ff9b::a00:1", false},
		{"nat64 loopback", Guard{}, "64:ff9b::127.0.0.1", false},
		{"nat64 wire server", Guard{}, "64:ff9b::168.63.129.16", false},
		{"nat64 public", Guard{}, "64:ff9b::93.184.216.34", true},
		{"local nat64", Guard{}, "64:ff9b:1::5db8:d822", false},
		{"6to4 loopback", Guard{}, "2002:7f00:1::1", false},
		{"6to4 metadata", Guard{}, "2002:a9fe:a9fe::1", false},
		{"6to4 public", Guard{}, "2002:5db8:d822::1", true},
		{"teredo", Guard{}, "2001:0:4136:e378:8000:63bf:3fff:fdd2", false},
		{"nat64 pool denied", Guard{Deny: []netip.Prefix{pool}}, "64:ff9b::10.64.0.5", false},
		{"6to4 pool denied", Guard{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Deny: []netip.Prefix{pool}}, "2002:a40:5::", false},
		{"mapped allowed as v4", Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, "::ffff:127.0.0.1", true},
		{"nat64 allowed as v4", Guard{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, "64:ff9b::10.1.2.3", true},
		{"v6 allow opens no embedded v4", Guard{Allow: []netip.Prefix{netip.MustParsePrefix("::/0")}}, "::ffff:127.0.0.1", false},
		{"v6 allow opens no nat64 v4", Guard{Allow: []netip.Prefix{netip.MustParsePrefix("64:ff9b::/96")}}, "64:ff9b::127.0.0.1", false},
		{"v6 deny covers embedded", Guard{Deny: []netip.Prefix{netip.MustParsePrefix("2002::/16")}}, "2002:5db8:d822::1", false},
		{"allowed v6 loopback", Guard{Allow: []netip.Prefix{netip.MustParsePrefix("::1/128")}}, "::1", true},
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

// TestRulesMatchPermit: the first-match list a packet filter enforces
// decides every address as Permit does, for guards with and without
// allowed and denied ranges of both families.
func TestRulesMatchPermit(t *testing.T) {
	pp := netip.MustParsePrefix
	guards := map[string]Guard{
		"zero":         {},
		"pools":        {Deny: []netip.Prefix{pp("10.64.0.0/10"), pp("fd7a:7665:696c::/64")}},
		"allow inside": {Allow: []netip.Prefix{pp("10.0.0.0/8"), pp("fd00::/8")}, Deny: []netip.Prefix{pp("10.64.0.0/10"), pp("fd7a:7665:696c::/64")}},
		"allow loop":   {Allow: []netip.Prefix{pp("127.0.0.0/8"), pp("::1/128")}},
		"broad":        {Allow: []netip.Prefix{pp("0.0.0.0/0"), pp("::/0")}, Deny: []netip.Prefix{pp("10.64.0.0/10")}},
		"deny v6":      {Deny: []netip.Prefix{pp("2002::/16"), pp("::/0")}},
		"mapped allow": {Allow: []netip.Prefix{pp("::ffff:10.0.0.0/104")}},
	}
	var v4s []netip.Addr
	for _, s := range []string{"0.0.0.0", "0.0.0.1", "8.8.8.8", "10.1.2.3", "10.64.0.5", "93.184.216.34", "127.0.0.1",
		"168.63.129.16", "169.254.169.254", "192.168.1.1", "224.0.0.1", "255.255.255.255"} {
		v4s = append(v4s, netip.MustParseAddr(s))
	}
	addrs := append([]netip.Addr(nil), v4s...)
	for _, v4 := range v4s {
		for _, f := range forms(netip.PrefixFrom(v4, 32)) {
			addrs = append(addrs, f.Addr())
		}
	}
	for _, s := range []string{"::", "::1", "::2", "2606:4700::1111", "fd00::1", "fd7a:7665:696c::7", "fe80::1",
		"ff02::1", "2001:db8::1", "64:ff9b:1::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "::ffff:0:0"} {
		addrs = append(addrs, netip.MustParseAddr(s))
	}
	for name, g := range guards {
		rules := g.Rules()
		for _, a := range addrs {
			want := g.Permit(a) == nil
			got := true
			for _, r := range rules {
				if r.Prefix.Contains(a) {
					got = r.Permit
					break
				}
			}
			if got != want {
				t.Errorf("%s: rules decide %s permitted=%v, Permit says %v", name, a, got, want)
			}
		}
	}
}

func TestEmbedded(t *testing.T) {
	for in, want := range map[string]string{
		"::ffff:1.2.3.4":   "1.2.3.4",
		"::1.2.3.4":        "1.2.3.4",
		"64:ff9b::1.2.3.4": "1.2.3.4",
		"2002:102:304::1":  "1.2.3.4",
		"::1":              "",
		"::":               "",
		"2606:4700::1111":  "",
		"1.2.3.4":          "",
	} {
		got, ok := Embedded(netip.MustParseAddr(in))
		if (want == "") == ok || (ok && got.String() != want) {
			t.Errorf("Embedded(%s) = %s, %v; want %q", in, got, ok, want)
		}
	}
}
