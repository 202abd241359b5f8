package billing

import (
	"reflect"
	"testing"
)

func TestParseProducts(t *testing.T) {
	p, err := ParseProducts([]string{"premium-30=30:5.00:EUR", "year=365:45:USD",
		"family-90=90:12.00 EUR/13.50 USD:family:Family: three months"})
	if err != nil {
		t.Fatal(err)
	}
	want := Products{
		"premium-30": {ID: "premium-30", Name: "premium-30", Days: 30, Plan: "premium", Prices: []Price{{500, "EUR"}}},
		"year":       {ID: "year", Name: "year", Days: 365, Plan: "premium", Prices: []Price{{4500, "USD"}}},
		"family-90":  {ID: "family-90", Name: "Family: three months", Days: 90, Plan: "family", Prices: []Price{{1200, "EUR"}, {1350, "USD"}}},
	}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("%+v", p)
	}
	if pr, ok := p["family-90"].Price("USD"); !ok || pr.Amount() != "13.50" {
		t.Errorf("USD price: %+v %v", pr, ok)
	}
	if _, ok := p["family-90"].Price("GBP"); ok {
		t.Error("a GBP price found")
	}
	if got := p.Sorted(); got[0].ID != "premium-30" || got[2].ID != "year" {
		t.Errorf("Sorted: %v", got)
	}
	for _, bad := range []string{"premium-30", "x=30:5.00", "x=0:5.00:EUR", "x=30:5.001:EUR", "x=30:-5:EUR",
		"x=30:5.00:eur", "X Y=30:5.00:EUR", "x=30:5.00:EUR:1", "x=30:5.00 EUR:free:Free", "x=30:5.00 EUR:premium:",
		"x=30:5.00 EUR/6.00 EUR:premium:Two in one", "x=30:5 eur:premium:X", "x=30:5.00 EUR:Premium:X"} {
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
