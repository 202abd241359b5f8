package billing

import "testing"

func TestParseProducts(t *testing.T) {
	p, err := ParseProducts([]string{"premium-30=30:5.00:EUR", "year=365:45:USD"})
	if err != nil {
		t.Fatal(err)
	}
	if p["premium-30"] != (Product{30, 500, "EUR"}) || p["year"] != (Product{365, 4500, "USD"}) {
		t.Fatalf("%+v", p)
	}
	for _, bad := range []string{"premium-30", "x=30:5.00", "x=0:5.00:EUR", "x=30:5.001:EUR", "x=30:-5:EUR",
		"x=30:5.00:eur", "X Y=30:5.00:EUR", "x=30:5.00:EUR:1"} {
		if _, err := ParseProducts([]string{bad}); err == nil {
			t.Errorf("%q taken", bad)
		}
	}
	if _, err := ParseProducts([]string{"a=1:1:EUR", "a=2:1:EUR"}); err == nil {
		t.Error("a product given twice taken")
	}
}

func TestAmount(t *testing.T) {
	for s, want := range map[string]int64{"5": 500, "5.5": 550, "5.05": 505, "0.01": 1, "12.340000": 1234} {
		if got, err := parseAmount(s); err != nil || got != want {
			t.Errorf("%q: %d %v, want %d", s, got, err, want)
		}
	}
	for _, bad := range []string{"", "5.", ".5", "5.001", "1e3", "-1", "5,00", "0.00000001"} {
		if _, err := parseAmount(bad); err == nil {
			t.Errorf("%q taken", bad)
		}
	}
	if formatAmount(505) != "5.05" || formatAmount(4500) != "45.00" {
		t.Error("formatAmount")
	}
}
