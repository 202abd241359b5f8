package geo

import (
	"golang.org/x/text/language"
	"golang.org/x/text/language/display"
)

// CountryName gives the English name of an ISO 3166-1 alpha-2 code, or
// the code itself when it is not one that CLDR knows.
func CountryName(iso string) string {
	r, err := language.ParseRegion(iso)
	if err != nil {
		return iso
	}
	if n := display.English.Regions().Name(r); n != "" {
		return n
	}
	return iso
}

// CountryLanguage gives the most likely language of a country as a base
// language code ("sv" for "SE"), from CLDR's likely subtags; "" when
// unknown.
func CountryLanguage(iso string) string {
	r, err := language.ParseRegion(iso)
	if err != nil {
		return ""
	}
	t, err := language.Compose(language.Und, r)
	if err != nil {
		return ""
	}
	b, conf := t.Base()
	if conf == language.No {
		return ""
	}
	return b.String()
}

// euMembers are the member states of the European Union. CLDR's "EU"
// grouping, which golang.org/x/text carries, still counts GB.
var euMembers = map[string]bool{
	"AT": true, "BE": true, "BG": true, "CY": true, "CZ": true, "DE": true, "DK": true,
	"EE": true, "ES": true, "FI": true, "FR": true, "GR": true, "HR": true, "HU": true,
	"IE": true, "IT": true, "LT": true, "LU": true, "LV": true, "MT": true, "NL": true,
	"PL": true, "PT": true, "RO": true, "SE": true, "SI": true, "SK": true,
}

// InEU says whether the country of an ISO 3166-1 alpha-2 code is a member
// of the European Union.
func InEU(iso string) bool { return euMembers[iso] }
