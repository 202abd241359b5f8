package geo_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"veil/internal/geo"
	"veil/internal/geo/geotest"
)

var recs = []geotest.Record{
	{Prefix: "203.0.113.0/24", Country: "SE", Region: "Stockholm", City: "Stockholm", TimeZone: "Europe/Stockholm", Lat: 59.33, Lon: 18.06, ASN: 64500, Org: "Example Net AB"},
	{Prefix: "2001:db8::/32", Country: "DE", City: "Berlin", TimeZone: "Europe/Berlin", Lat: 52.5, Lon: 13.4},
}

func TestLookup(t *testing.T) {
	for _, layout := range []geotest.Layout{geotest.Flat, geotest.GeoIP2} {
		db, err := geo.Open(geotest.Write(t, layout, recs...))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		tests := []struct {
			ip                               string
			iso, country, city, tz, asn, org string
			coords                           bool
		}{
			{"203.0.113.9", "SE", "Sweden", "Stockholm", "Europe/Stockholm", "AS64500", "Example Net AB", true},
			{"::ffff:203.0.113.9", "SE", "Sweden", "Stockholm", "Europe/Stockholm", "AS64500", "Example Net AB", true},
			{"2001:db8::1", "DE", "Germany", "Berlin", "Europe/Berlin", "unknown", "unknown", true},
			{"198.51.100.1", "", "unknown", "unknown", "unknown", "unknown", "unknown", false},
		}
		for _, tt := range tests {
			t.Run(tt.ip, func(t *testing.T) {
				got := db.Lookup(netip.MustParseAddr(tt.ip))
				if got.CountryISO != tt.iso || got.Country != tt.country || got.City != tt.city ||
					got.TimeZone != tt.tz || got.ASNString != tt.asn || got.ASOrg != tt.org ||
					(got.Latitude != nil) != tt.coords {
					t.Errorf("layout %d: Lookup(%s) = %+v", layout, tt.ip, got)
				}
			})
		}
	}
}

func TestNoDatabase(t *testing.T) {
	dbs := map[string]*geo.DB{"nil": nil}
	empty, err := geo.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dbs["empty dir"] = empty
	for name, db := range dbs {
		got := db.Lookup(netip.MustParseAddr("203.0.113.9"))
		if got.Country != geo.Unknown || got.City != geo.Unknown || got.ASOrg != geo.Unknown || got.TimeZone != geo.Unknown {
			t.Errorf("%s: %+v, want unknown", name, got)
		}
		if db.Loaded() {
			t.Errorf("%s: Loaded", name)
		}
	}
}

func TestOpenDirMergesCityAndASN(t *testing.T) {
	dir := t.TempDir()
	geotest.WriteFile(t, filepath.Join(dir, "dbip-city-ipv4.mmdb"), geotest.Flat, geotest.Record{Prefix: "203.0.113.0/24", Country: "NL", City: "Amsterdam", TimeZone: "Europe/Amsterdam"})
	geotest.WriteFile(t, filepath.Join(dir, "asn.mmdb"), geotest.GeoIP2, geotest.Record{Prefix: "203.0.0.0/16", ASN: 64501, Org: "Other"})
	if err := os.WriteFile(filepath.Join(dir, "unrelated.mmdb"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := geo.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got := db.Lookup(netip.MustParseAddr("203.0.113.1"))
	if got.City != "Amsterdam" || got.ASN != 64501 || got.ASOrg != "Other" || db.Attribution.URL == "" {
		t.Errorf("got %+v, attribution %+v", got, db.Attribution)
	}
}

func TestOpenBadFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.mmdb")
	os.WriteFile(p, []byte("not a database"), 0o644)
	if _, err := geo.Open(p); err == nil {
		t.Fatal("Open of a bad file succeeded")
	}
}

func TestCountryLanguage(t *testing.T) {
	for iso, want := range map[string]string{"SE": "sv", "DE": "de", "US": "en", "JP": "ja", "": ""} {
		if got := geo.CountryLanguage(iso); got != want {
			t.Errorf("CountryLanguage(%q) = %q, want %q", iso, got, want)
		}
	}
}

func TestTimeZoneFor(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		iso      string
		lat, lon *float64
		want     string
	}{
		{"SE", nil, nil, "Europe/Stockholm"},
		{"US", f(40.7), f(-74), "America/New_York"},
		{"US", f(34.05), f(-118.24), "America/Los_Angeles"},
		{"AU", f(-31.95), f(115.86), "Australia/Perth"},
		{"", nil, nil, ""},
	}
	for _, tt := range tests {
		if got := geo.TimeZoneFor(tt.iso, tt.lat, tt.lon); got != tt.want {
			t.Errorf("TimeZoneFor(%s) = %q, want %q", tt.iso, got, tt.want)
		}
	}
}

// TestEchoipFields: the fields echoip answers besides the basic ones, in
// the layouts that have them.
func TestEchoipFields(t *testing.T) {
	rec := []geotest.Record{
		{Prefix: "203.0.113.0/24", Country: "SE", Region: "Stockholm", RegionCode: "AB", Postal: "111 22", City: "Stockholm"},
		{Prefix: "198.51.100.0/24", Country: "GB", Region: "England", RegionCode: "ENG", City: "London"},
	}
	for _, tt := range []struct {
		layout         geotest.Layout
		ip             string
		eu             bool
		code, postcode string
	}{
		{geotest.GeoIP2, "203.0.113.1", true, "AB", "111 22"},
		{geotest.Flat, "203.0.113.1", true, "", "111 22"},
		{geotest.GeoIP2, "198.51.100.1", false, "ENG", ""},
	} {
		db, err := geo.Open(geotest.Write(t, tt.layout, rec...))
		if err != nil {
			t.Fatal(err)
		}
		got := db.Lookup(netip.MustParseAddr(tt.ip))
		db.Close()
		if got.EU != tt.eu || got.RegionCode != tt.code || got.PostalCode != tt.postcode {
			t.Errorf("layout %d, %s: EU %v, region code %q, postal code %q; want %v, %q, %q",
				tt.layout, tt.ip, got.EU, got.RegionCode, got.PostalCode, tt.eu, tt.code, tt.postcode)
		}
	}
}

// TestOpenDirRefusesDevice: a device under a database's name stops the
// start with a line naming it, instead of being mapped.
func TestOpenDirRefusesDevice(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink("/dev/zero", filepath.Join(dir, geo.Files[0])); err != nil {
		t.Fatal(err)
	}
	if _, err := geo.OpenDir(dir); err == nil || !strings.Contains(err.Error(), geo.Files[0]+" is not a regular file") {
		t.Fatalf("OpenDir with /dev/zero as a database: %v", err)
	}
}
