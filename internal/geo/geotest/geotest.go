// Package geotest writes small MaxMind-format databases for tests, in the
// layouts that package geo reads.
package geotest

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Record is what a test database says about one network.
type Record struct {
	Prefix  string // "203.0.113.0/24"
	Country string // ISO code
	Region  string
	// RegionCode is written in the GeoIP2 layout only: the flat one has
	// no such field.
	RegionCode string
	Postal     string
	City       string
	TimeZone   string
	Lat, Lon   float64
	ASN        uint32
	Org        string
}

// Layout picks how a database spells its fields.
type Layout int

const (
	// Flat is the @ip-location-db layout (country_code, city, timezone,
	// autonomous_system_number…).
	Flat Layout = iota
	// GeoIP2 is the MaxMind GeoIP2/GeoLite2 City and ASN layout.
	GeoIP2
)

// Write writes a database holding recs to a new file in a test temp dir
// and returns its path.
func Write(tb testing.TB, layout Layout, recs ...Record) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "test.mmdb")
	WriteFile(tb, path, layout, recs...)
	return path
}

// WriteFile writes a database holding recs to path.
func WriteFile(tb testing.TB, path string, layout Layout, recs ...Record) {
	tb.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            "veil-test",
		IncludeReservedNetworks: true, // tests use loopback and documentation ranges
		RecordSize:              24,
	})
	if err != nil {
		tb.Fatal(err)
	}
	for _, r := range recs {
		_, n, err := net.ParseCIDR(r.Prefix)
		if err != nil {
			tb.Fatal(err)
		}
		if err := tree.Insert(n, r.value(layout)); err != nil {
			tb.Fatalf("inserting %s: %v", r.Prefix, err)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if _, err := tree.WriteTo(f); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

func (r Record) value(layout Layout) mmdbtype.Map {
	m := mmdbtype.Map{}
	if layout == Flat {
		if r.Country != "" {
			m["country_code"] = mmdbtype.String(r.Country)
			m["state1"] = mmdbtype.String(r.Region)
			if r.Postal != "" {
				m["postcode"] = mmdbtype.String(r.Postal)
			}
			m["city"] = mmdbtype.String(r.City)
			m["timezone"] = mmdbtype.String(r.TimeZone)
			m["latitude"] = mmdbtype.Float32(r.Lat)
			m["longitude"] = mmdbtype.Float32(r.Lon)
		}
	} else if r.Country != "" {
		names := func(s string) mmdbtype.Map { return mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(s)}} }
		m["country"] = mmdbtype.Map{"iso_code": mmdbtype.String(r.Country)}
		m["city"] = names(r.City)
		sub := names(r.Region)
		if r.RegionCode != "" {
			sub["iso_code"] = mmdbtype.String(r.RegionCode)
		}
		m["subdivisions"] = mmdbtype.Slice{sub}
		if r.Postal != "" {
			m["postal"] = mmdbtype.Map{"code": mmdbtype.String(r.Postal)}
		}
		m["location"] = mmdbtype.Map{
			"latitude":  mmdbtype.Float64(r.Lat),
			"longitude": mmdbtype.Float64(r.Lon),
			"time_zone": mmdbtype.String(r.TimeZone),
		}
	}
	if r.ASN != 0 {
		m["autonomous_system_number"] = mmdbtype.Uint32(r.ASN)
		m["autonomous_system_organization"] = mmdbtype.String(r.Org)
	}
	return m
}
