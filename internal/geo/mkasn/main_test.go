package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"veil/internal/geo"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	v4 := filepath.Join(dir, "asn-ipv4.csv")
	v6 := filepath.Join(dir, "asn-ipv6.csv")
	os.WriteFile(v4, []byte("1.0.0.0,1.0.0.255,13335,\"Cloudflare, Inc.\"\n81.2.69.0,81.2.69.255,20712,Andrews & Arnold Ltd\nbad,line\n"), 0o644)
	os.WriteFile(v6, []byte("2a00:1450::,2a00:1450:ffff:ffff:ffff:ffff:ffff:ffff,15169,Google LLC\n"), 0o644)
	out := filepath.Join(dir, "asn.mmdb")
	if err := run(out, []string{v4, v6}); err != nil {
		t.Fatal(err)
	}
	db, err := geo.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for ip, want := range map[string]string{"1.0.0.1": "Cloudflare, Inc.", "81.2.69.142": "Andrews & Arnold Ltd", "2a00:1450::1": "Google LLC", "9.9.9.9": "unknown"} {
		if got := db.Lookup(netip.MustParseAddr(ip)).ASOrg; got != want {
			t.Errorf("%s: %q, want %q", ip, got, want)
		}
	}
	if err := run(out, nil); err == nil {
		t.Error("run without inputs succeeded")
	}
}
