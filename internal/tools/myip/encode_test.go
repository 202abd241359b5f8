package myip

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestAppendReportMatchesEncodingJSON(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	reports := []Report{
		{ProxyHeaders: []Header{}, Blocklists: []Listing{}},
		{
			IP: "2001:db8::1", IPDecimal: "42540766411282592856903984951653826561", IPVersion: 6,
			Country: "Côte d'Ivoire", CountryISO: "CI", Region: "Abidjan", RegionCode: "AB", ZipCode: "01 BP", City: "Abidjan",
			Latitude: f(5.3599517), Longitude: f(-4.0082563), TimeZone: "Africa/Abidjan", ASN: "AS1", ASNOrg: `Q "&" <co> \ ok`,
			Hostname: "h.example", UserAgent: &UserAgent{Product: "Mozilla", Version: "5.0", Comment: `(X11; "Linux")`, RawValue: `Mozilla/5.0 (X11; "Linux")`},
			CountryLanguage: "fr", Protected: true, Gateway: "ci-abj-1",
			ProxyHeaders: []Header{{"Via", "1.1 a\tb\n\x01\u2028 \xff"}, {"X-Real-Ip", "1.2.3.4"}},
			Blocklists:   []Listing{{Zone: "a.test", Listed: true}, {Zone: "b.test", Error: "no answer in time"}},
			Lookup:       true,
		},
		{IP: "1.2.3.4", IPDecimal: "16909060", IPVersion: 4, CountryEU: true, Latitude: f(-0.0001), Longitude: f(123),
			UserAgent: &UserAgent{Product: "curl", RawValue: "curl"}, ProxyHeaders: []Header{}, Blocklists: []Listing{}},
	}
	for i, r := range reports {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		got := appendReport(nil, &r)
		if string(got) != string(want) {
			// Equal bytes are the aim; equal values are what clients need.
			var a, b any
			if err := json.Unmarshal(got, &a); err != nil {
				t.Fatalf("report %d: invalid JSON %s: %v", i, got, err)
			}
			json.Unmarshal(want, &b)
			if !reflect.DeepEqual(a, b) {
				t.Errorf("report %d:\n got %s\nwant %s", i, got, want)
			}
		}
	}
}
