package account

import (
	"errors"
	"strings"
	"testing"
)

func TestVoucher(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		c, err := NewVoucher()
		if err != nil {
			t.Fatal(err)
		}
		n, err := NormalizeVoucher(strings.ToLower(strings.ReplaceAll(c, "-", " ")))
		if err != nil || FormatVoucher(n) != c {
			t.Fatalf("round trip of %s: %q, %v", c, n, err)
		}
		if seen[n] {
			t.Fatalf("%s drawn twice", c)
		}
		seen[n] = true
	}
	for _, bad := range []string{"", "ABCD", "ABCD-EFGH-JKMN-PQRS-TVW0", "ABCD-EFGH-JKMN-PQRS-TVWXY", "ÄBCD-EFGH-JKMN-PQRS-TVWX"} {
		if _, err := NormalizeVoucher(bad); !errors.Is(err, ErrMalformedVoucher) {
			t.Errorf("NormalizeVoucher(%q) = %v", bad, err)
		}
	}
	h, _ := NewHasher(make([]byte, 32))
	if string(h.Voucher("X")) == string(h.Code("X")) {
		t.Error("voucher and access-code hashes share a domain")
	}
}
