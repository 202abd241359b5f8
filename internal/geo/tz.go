package geo

import (
	_ "embed"
	"math"
	"strconv"
	"strings"
)

// zone.tab is the tz database's table of zones by country with each
// zone's principal location (public domain, from Debian's tzdata). It
// fills the time zone when the city database has none, as DB-IP lite
// does not.
//
//go:embed zone.tab
var zoneTab string

type tzZone struct {
	name     string
	lat, lon float64
}

var zonesByCountry = parseZoneTab(zoneTab)

func parseZoneTab(s string) map[string][]tzZone {
	out := map[string][]tzZone{}
	for _, line := range strings.Split(s, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) < 3 {
			continue
		}
		lat, lon, ok := parseISO6709(f[1])
		if !ok {
			continue
		}
		out[f[0]] = append(out[f[0]], tzZone{name: f[2], lat: lat, lon: lon})
	}
	return out
}

// parseISO6709 reads "+4230+00131" or "+404251-0740023".
func parseISO6709(s string) (lat, lon float64, ok bool) {
	i := strings.LastIndexAny(s, "+-")
	if i <= 0 {
		return 0, 0, false
	}
	lat, ok1 := dms(s[:i], 2)
	lon, ok2 := dms(s[i:], 3)
	return lat, lon, ok1 && ok2
}

func dms(s string, degDigits int) (float64, bool) {
	if len(s) < 1+degDigits+2 {
		return 0, false
	}
	sign := 1.0
	if s[0] == '-' {
		sign = -1
	}
	s = s[1:]
	parts := []string{s[:degDigits], s[degDigits : degDigits+2]}
	if len(s) >= degDigits+4 {
		parts = append(parts, s[degDigits+2:degDigits+4])
	}
	v := 0.0
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return 0, false
		}
		v += float64(n) / math.Pow(60, float64(i))
	}
	return sign * v, true
}

// TimeZoneFor guesses the IANA time zone of a place: the country's only
// zone, or the zone whose principal city is nearest the coordinates.
// "" when the country is unknown.
func TimeZoneFor(iso string, lat, lon *float64) string {
	zones := zonesByCountry[strings.ToUpper(iso)]
	switch {
	case len(zones) == 0:
		return ""
	case len(zones) == 1 || lat == nil || lon == nil:
		return zones[0].name
	}
	best, bestD := "", math.Inf(1)
	for _, z := range zones {
		dlat := z.lat - *lat
		dlon := (z.lon - *lon) * math.Cos(*lat*math.Pi/180)
		if d := dlat*dlat + dlon*dlon; d < bestD {
			best, bestD = z.name, d
		}
	}
	return best
}
