package controlplane

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

func TestEndpointResolverCache(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var lookups atomic.Int64
	fail := false
	e := newEndpointResolver(func() time.Time { return now })
	e.lookup = func(_ context.Context, host string) ([]netip.Addr, error) {
		lookups.Add(1)
		if fail || host != "gw.example" {
			return nil, errors.New("no such host")
		}
		return []netip.Addr{netip.MustParseAddr("::ffff:198.51.100.7"), netip.MustParseAddr("2001:db8::7")}, nil
	}
	eps := []string{"gw.example:51820", "gw.example:51821", "198.51.100.9:51820", "gone.example:1", "[2001:db8::9]:51820", "bad"}
	got := e.resolve(context.Background(), eps)
	want := map[string][]string{
		"gw.example:51820": {"198.51.100.7:51820", "[2001:db8::7]:51820"},
		"gw.example:51821": {"198.51.100.7:51821", "[2001:db8::7]:51821"},
	}
	if len(got) != len(want) {
		t.Fatalf("resolve = %v, want %v", got, want)
	}
	for ep, w := range want {
		if !slices.Equal(got[ep], w) {
			t.Errorf("%s: %v, want %v", ep, got[ep], w)
		}
	}
	if n := lookups.Load(); n != 2 {
		t.Errorf("%d lookups, want 2 (one per name)", n)
	}
	// Cached: no lookup within the TTL, even for the name that failed
	// (until endpointFailTTL).
	e.resolve(context.Background(), eps)
	if n := lookups.Load(); n != 2 {
		t.Errorf("%d lookups after a cached resolve, want 2", n)
	}
	now = now.Add(endpointFailTTL)
	e.resolve(context.Background(), eps)
	if n := lookups.Load(); n != 3 {
		t.Errorf("%d lookups after the failure TTL, want 3 (the failed name again)", n)
	}
	// Past the TTL a name is looked up again; a failure then drops its
	// addresses rather than serving them forever.
	now = now.Add(endpointTTL)
	fail = true
	if got := e.resolve(context.Background(), eps); len(got) != 0 {
		t.Errorf("after a failed refresh: %v, want nothing", got)
	}
}
