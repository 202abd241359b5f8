package device

import (
	"strings"
	"testing"
)

func TestPools(t *testing.T) {
	p, err := ParsePools("10.64.0.0/10", "fd7a:7665:696c::/64")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		i      int64
		v4, v6 string
	}{
		{1, "10.64.0.1", "fd7a:7665:696c::1"},
		{2, "10.64.0.2", "fd7a:7665:696c::2"},
		{256, "10.64.1.0", "fd7a:7665:696c::100"},
		{p.MaxIndex(), "10.127.255.254", "fd7a:7665:696c::3f:fffe"},
	}
	for _, tt := range tests {
		a4, a6 := p.Addrs(tt.i)
		if a4.String() != tt.v4 || a6.String() != tt.v6 {
			t.Errorf("Addrs(%d) = %s, %s; want %s, %s", tt.i, a4, a6, tt.v4, tt.v6)
		}
	}
	g4, g6 := p.Gateway()
	if g4.String() != "10.64.0.1/10" || g6.String() != "fd7a:7665:696c::1/64" {
		t.Errorf("Gateway() = %s, %s", g4, g6)
	}
	small, _ := ParsePools("10.0.0.0/29", "fd00::/120")
	if small.MaxIndex() != 6 {
		t.Errorf("MaxIndex of a /29 = %d, want 6", small.MaxIndex())
	}
	v6small, _ := ParsePools("10.0.0.0/8", "fd00::/125")
	if v6small.MaxIndex() != 7 {
		t.Errorf("MaxIndex bounded by a /125 = %d, want 7", v6small.MaxIndex())
	}
}

func TestParsePublicKey(t *testing.T) {
	good := "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
	if k, err := ParsePublicKey(good); err != nil || k != good {
		t.Errorf("ParsePublicKey(good) = %q, %v", k, err)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("A", 43) + "=", good[:43] + "!", strings.Repeat("x", 500000)} {
		if _, err := ParsePublicKey(bad); err == nil {
			t.Errorf("ParsePublicKey(%.20q) accepted", bad)
		}
	}
}

func TestCleanName(t *testing.T) {
	if n, _ := CleanName("  laptop ", "d"); n != "laptop" {
		t.Errorf("got %q", n)
	}
	if n, _ := CleanName("", "device-1"); n != "device-1" {
		t.Errorf("got %q", n)
	}
	if _, err := CleanName("a\x00b", "d"); err == nil {
		t.Error("control character accepted")
	}
	if _, err := CleanName(strings.Repeat("é", 65), "d"); err == nil {
		t.Error("65-rune name accepted")
	}
}
