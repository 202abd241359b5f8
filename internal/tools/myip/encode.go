package myip

import (
	"net/http"
	"strconv"
	"sync"
	"unicode/utf8"
)

// appendReport writes rep as JSON, the same as encoding/json would
// (TestAppendReportMatchesEncodingJSON), without reflection: /json is the
// hot path of the tool and reflection was most of its cost.
func appendReport(b []byte, r *Report) []byte {
	b = append(b, `{"ip":`...)
	b = appendString(b, r.IP)
	b = append(b, `,"ip_decimal":`...)
	if r.IPDecimal == "" {
		b = append(b, '0') // as encoding/json writes an empty json.Number
	} else {
		b = append(b, r.IPDecimal...)
	}
	b = append(b, `,"ip_version":`...)
	b = strconv.AppendInt(b, int64(r.IPVersion), 10)
	b = appendField(b, "country", r.Country)
	b = appendField(b, "country_iso", r.CountryISO)
	b = append(b, `,"country_eu":`...)
	b = strconv.AppendBool(b, r.CountryEU)
	if r.Region != "" {
		b = appendField(b, "region_name", r.Region)
	}
	if r.RegionCode != "" {
		b = appendField(b, "region_code", r.RegionCode)
	}
	if r.ZipCode != "" {
		b = appendField(b, "zip_code", r.ZipCode)
	}
	b = appendField(b, "city", r.City)
	if r.Latitude != nil {
		b = append(b, `,"latitude":`...)
		b = appendFloat(b, *r.Latitude)
	}
	if r.Longitude != nil {
		b = append(b, `,"longitude":`...)
		b = appendFloat(b, *r.Longitude)
	}
	b = appendField(b, "time_zone", r.TimeZone)
	b = appendField(b, "asn", r.ASN)
	b = appendField(b, "asn_org", r.ASNOrg)
	if r.Hostname != "" {
		b = appendField(b, "hostname", r.Hostname)
	}
	if ua := r.UserAgent; ua != nil {
		b = append(b, `,"user_agent":{`...)
		n := len(b)
		for _, f := range [...]struct{ name, v string }{
			{"product", ua.Product}, {"version", ua.Version}, {"comment", ua.Comment}, {"raw_value", ua.RawValue},
		} {
			if f.v == "" {
				continue
			}
			if len(b) > n {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = append(b, f.name...)
			b = append(b, '"', ':')
			b = appendString(b, f.v)
		}
		b = append(b, '}')
	}
	if r.CountryLanguage != "" {
		b = appendField(b, "country_language", r.CountryLanguage)
	}
	b = append(b, `,"protected":`...)
	b = strconv.AppendBool(b, r.Protected)
	if r.Gateway != "" {
		b = appendField(b, "gateway", r.Gateway)
	}
	b = append(b, `,"proxy_headers":[`...)
	for i, h := range r.ProxyHeaders {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendString(b, h.Name)
		b = appendField(b, "value", h.Value)
		b = append(b, '}')
	}
	b = append(b, `],"blocklists":[`...)
	for i, l := range r.Blocklists {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"zone":`...)
		b = appendString(b, l.Zone)
		b = append(b, `,"listed":`...)
		b = strconv.AppendBool(b, l.Listed)
		if l.Error != "" {
			b = appendField(b, "error", l.Error)
		}
		b = append(b, '}')
	}
	b = append(b, ']')
	if r.Lookup {
		b = append(b, `,"lookup":true`...)
	}
	return append(b, '}')
}

func appendField(b []byte, name, v string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, v)
}

// appendFloat formats like encoding/json for the range of coordinates.
func appendFloat(b []byte, f float64) []byte {
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

const hexDigits = "0123456789abcdef"

// appendString quotes s as encoding/json does, HTML-safe escapes and
// U+2028/2029 included, invalid UTF-8 replaced.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// Header values shared by every answer; never modified.
var (
	hdrJSON    = []string{"application/json"}
	hdrText    = []string{"text/plain; charset=utf-8"}
	hdrNoStore = []string{"no-store"}
	hdrAnyOrig = []string{"*"}
)

// apiHeaders sets the headers of an API answer. The dual-stack check
// reads answers from other host names, hence CORS; an answer is about
// the asker alone, hence no-store.
func apiHeaders(h http.Header, contentType []string) {
	h["Content-Type"] = contentType
	h["Cache-Control"] = hdrNoStore
	h["Access-Control-Allow-Origin"] = hdrAnyOrig
}

func writeReport(w http.ResponseWriter, rep *Report) {
	bp := bufPool.Get().(*[]byte)
	b := appendReport((*bp)[:0], rep)
	b = append(b, '\n')
	apiHeaders(w.Header(), hdrJSON)
	w.Write(b)
	*bp = b
	bufPool.Put(bp)
}
