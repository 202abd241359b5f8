package account

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestNewCode(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		c, err := NewCode()
		if err != nil {
			t.Fatal(err)
		}
		if n, err := NormalizeCode(c); err != nil || n != c {
			t.Fatalf("code %q does not normalize to itself: %q, %v", c, n, err)
		}
		if seen[c] {
			t.Fatalf("code %q drawn twice", c)
		}
		seen[c] = true
	}
}

func TestNormalizeCode(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"1234567890123456", "1234567890123456", true},
		{"1234 5678 9012 3456", "1234567890123456", true},
		{"1234-5678-9012-3456", "1234567890123456", true},
		{"123456789012345", "", false},
		{"12345678901234567", "", false},
		{"1234x67890123456", "", false},
		{"", "", false},
		{"١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦", "", false}, // Arabic-Indic digits are not ASCII digits
	}
	for _, tt := range tests {
		got, err := NormalizeCode(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("NormalizeCode(%q) = %q, %v", tt.in, got, err)
		}
	}
	if got := FormatCode("1234567890123456"); got != "1234 5678 9012 3456" {
		t.Errorf("FormatCode = %q", got)
	}
}

func TestHasherKeyed(t *testing.T) {
	h1, _ := NewHasher(bytes.Repeat([]byte{1}, 32))
	h2, _ := NewHasher(bytes.Repeat([]byte{2}, 32))
	if bytes.Equal(h1.Code("1234567890123456"), h2.Code("1234567890123456")) {
		t.Error("different secrets give the same hash")
	}
	if bytes.Equal(h1.Code("x"), h1.Token("x")) {
		t.Error("code and token hashes of one string collide")
	}
	if _, err := NewHasher([]byte("short")); err == nil {
		t.Error("short secret accepted")
	}
}

func TestLoadOrCreateSecretRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d", "secret")
	var wg sync.WaitGroup
	got := make([][]byte, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := LoadOrCreateSecret(path)
			if err != nil {
				t.Error(err)
			}
			got[i] = s
		}()
	}
	wg.Wait()
	for _, s := range got[1:] {
		if !bytes.Equal(s, got[0]) {
			t.Fatal("racing creators ended with different secrets")
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("secret mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestPaymentRef(t *testing.T) {
	h, _ := NewHasher(make([]byte, 32))
	other, _ := NewHasher(append(make([]byte, 31), 1))
	ref := h.PaymentRef(42)
	if id, ok := h.ParsePaymentRef(ref); !ok || id != 42 {
		t.Fatalf("ParsePaymentRef(%q) = %d, %v", ref, id, ok)
	}
	if id, ok := h.ParsePaymentRef(" " + ref + " "); !ok || id != 42 {
		t.Fatalf("with spaces: %d, %v", id, ok)
	}
	forged := "43" + ref[2:]
	for _, bad := range []string{forged, other.PaymentRef(42), "42", "42-", "-" + ref, "042" + ref[2:], "0-x", "", "x-y", ref + "x"} {
		if id, ok := h.ParsePaymentRef(bad); ok {
			t.Errorf("ParsePaymentRef(%q) = %d, accepted", bad, id)
		}
	}
}
