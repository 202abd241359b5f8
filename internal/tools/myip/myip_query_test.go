package myip

import (
	"net/url"
	"testing"
)

// FuzzQueryValue: queryValue agrees with url.Values.Get on any query.
func FuzzQueryValue(f *testing.F) {
	for _, s := range []string{"ip=1.2.3.4", "a=1&ip=%32.2.3.4&ip=9", "ip", "ip=", "i%70=x", "ip=1;x=2&ip=3", "ip=%zz&ip=4", "&&ip=5&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		want := (&url.URL{RawQuery: raw}).Query().Get("ip")
		if got := queryValue(raw, "ip"); got != want {
			t.Errorf("queryValue(%q) = %q, url.Values says %q", raw, got, want)
		}
	})
}
