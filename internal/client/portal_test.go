package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestCheckPortal(t *testing.T) {
	tests := []struct {
		name        string
		handler     http.HandlerFunc
		intercepted bool
		location    string
	}{
		{"204 from the check server", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }, false, ""},
		{"redirect to a portal", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://portal.example/login", http.StatusFound)
		}, true, "http://portal.example/login"},
		{"login page in its place", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("<html>log in</html>")) }, true, ""},
		{"the same host moving to HTTPS", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://"+r.Host+r.URL.Path, http.StatusMovedPermanently)
		}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			pc, err := CheckPortal(context.Background(), srv.Client(), srv.URL+PortalCheckPath)
			if err != nil {
				t.Fatal(err)
			}
			if pc.Intercepted != tt.intercepted || (tt.location != "" && pc.Location != tt.location) {
				t.Errorf("CheckPortal = %+v, want intercepted %v, location %q", pc, tt.intercepted, tt.location)
			}
		})
	}
}

func TestPortalCheckURL(t *testing.T) {
	for control, want := range map[string]string{
		"https://veil.example":        "http://veil.example/generate_204",
		"https://veil.example:8443/x": "http://veil.example/generate_204",
		"http://192.0.2.2:8080":       "http://192.0.2.2:8080/generate_204",
		"https://[2001:db8::1]:443":   "http://[2001:db8::1]/generate_204",
	} {
		if got, err := PortalCheckURL(control); err != nil || got != want {
			t.Errorf("PortalCheckURL(%q) = %q, %v; want %q", control, got, err, want)
		}
	}
	if _, err := PortalCheckURL("not a url"); err == nil {
		t.Error("PortalCheckURL accepted a URL without a host")
	}
}

func TestParseNameservers(t *testing.T) {
	got := parseNameservers([]byte("# comment\nnameserver 192.0.2.53\nsearch lan\nnameserver fe80::1\nnameserver bogus\nnameserver 127.0.0.53\n"))
	want := []netip.Addr{netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("fe80::1"), netip.MustParseAddr("127.0.0.53")}
	if !slices.Equal(got, want) {
		t.Errorf("parseNameservers = %v, want %v", got, want)
	}
}

func TestPortalWindowLimits(t *testing.T) {
	for _, d := range []time.Duration{-1, MaxPortalWindow + 1} {
		if _, err := OpenPortal(context.Background(), t.TempDir(), d); err == nil {
			t.Errorf("OpenPortal(%s) accepted a window out of bounds", d)
		}
	}
}
