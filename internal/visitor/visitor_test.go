package visitor

import (
	"errors"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestAddr(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		remote  string
		xff     []string
		want    string
	}{
		{"no proxy", nil, "198.51.100.9:1", nil, "198.51.100.9"},
		{"untrusted peer's header ignored", nil, "198.51.100.9:1", []string{"192.0.2.5"}, "198.51.100.9"},
		{"untrusted peer while proxies are set", proxies, "198.51.100.9:1", []string{"192.0.2.5"}, "198.51.100.9"},
		{"trusted proxy", proxies, "10.1.1.1:1", []string{"198.51.100.9"}, "198.51.100.9"},
		{"trusted proxy, no header: the proxy itself", proxies, "10.1.1.1:1", nil, "10.1.1.1"},
		{"rightmost untrusted hop, not what the visitor wrote", proxies, "10.1.1.1:1", []string{"192.0.2.5, 198.51.100.9"}, "198.51.100.9"},
		{"chain of trusted proxies", proxies, "10.1.1.1:1", []string{"192.0.2.5, 198.51.100.9, 10.2.2.2"}, "198.51.100.9"},
		{"several header lines read in order", proxies, "10.1.1.1:1", []string{"192.0.2.5", "198.51.100.9, 10.2.2.2"}, "198.51.100.9"},
		{"every hop trusted: the leftmost", proxies, "10.1.1.1:1", []string{"10.3.3.3, 10.2.2.2"}, "10.3.3.3"},
		{"malformed hop stops at the nearest vouched-for", proxies, "10.1.1.1:1", []string{"192.0.2.5, bogus, 10.2.2.2"}, "10.2.2.2"},
		{"malformed last hop: the proxy", proxies, "10.1.1.1:1", []string{"192.0.2.5, unknown"}, "10.1.1.1"},
		{"empty hops skipped", proxies, "10.1.1.1:1", []string{"198.51.100.9,, "}, "198.51.100.9"},
		{"hop with a port", proxies, "10.1.1.1:1", []string{"198.51.100.9:5000"}, "198.51.100.9"},
		{"IPv6 hop with a port", proxies, "10.1.1.1:1", []string{"[2001:db8::9]:5000"}, "2001:db8::9"},
		{"IPv4-mapped peer unmapped", proxies, "[::ffff:10.1.1.1]:1", []string{"::ffff:198.51.100.9"}, "198.51.100.9"},
		{"IPv4-mapped peer without proxies", nil, "[::ffff:198.51.100.9]:1", nil, "198.51.100.9"},
		{"IPv6 proxy", proxies, "[2001:db8:ffff::1]:1", []string{"2001:db8::9"}, "2001:db8::9"},
		{"mapped prefix in the config", []netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/104")}, "10.1.1.1:1", []string{"198.51.100.9"}, "198.51.100.9"},
		{"zone dropped", nil, "[fe80::1%eth0]:1", nil, "fe80::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			got, err := New(tt.trusted).Addr(r)
			if err != nil || got.String() != tt.want {
				t.Errorf("Addr = %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestNilAndUnreadable(t *testing.T) {
	var v *Resolver
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.1.1.1:1"
	r.Header.Set("X-Forwarded-For", "198.51.100.9")
	if got, err := v.Addr(r); err != nil || got.String() != "10.1.1.1" {
		t.Errorf("nil Resolver: %v, %v; want the peer", got, err)
	}
	r.RemoteAddr = "@"
	if _, err := v.Addr(r); !errors.Is(err, ErrNoPeer) {
		t.Errorf("unreadable peer: err %v, want ErrNoPeer", err)
	}
	if k := v.Key(r); k != netip.IPv6Unspecified() {
		t.Errorf("Key of an unreadable peer = %v, want the shared ::", k)
	}
}

func BenchmarkAddr(b *testing.B) {
	v := New([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.1.1.1:1"
	r.Header.Set("X-Forwarded-For", "192.0.2.5, 198.51.100.9, 10.2.2.2")
	b.ReportAllocs()
	for b.Loop() {
		v.Addr(r)
	}
}

func TestSecure(t *testing.T) {
	v := New([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	tests := []struct {
		name, remote, proto string
		want                bool
	}{
		{"plain HTTP", "198.51.100.9:1", "", false},
		{"untrusted peer claims HTTPS", "198.51.100.9:1", "https", false},
		{"trusted proxy says HTTPS", "10.1.1.1:1", "https", true},
		{"trusted proxy says HTTP", "10.1.1.1:1", "http", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			if tt.proto != "" {
				r.Header.Set("X-Forwarded-Proto", tt.proto)
			}
			if got := v.Secure(r); got != tt.want {
				t.Errorf("Secure = %v, want %v", got, tt.want)
			}
		})
	}
	var none *Resolver
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Forwarded-Proto", "https")
	if none.Secure(r) {
		t.Error("a nil resolver believed X-Forwarded-Proto")
	}
}
