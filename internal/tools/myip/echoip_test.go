package myip

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strconv"
	"testing"
	"time"

	"veil/internal/geo"
	"veil/internal/geo/geotest"
	"veil/internal/netguard"
	"veil/internal/tools/outbound"
)

// echoipHandler answers for a GeoIP2-layout database, the layout that has
// every field echoip shows, and checks ports on loopback.
func echoipHandler(tb testing.TB) *Handler {
	tb.Helper()
	db, err := geo.Open(geotest.Write(tb, geotest.GeoIP2,
		geotest.Record{Prefix: "127.0.0.0/8", Country: "NO", Region: "Trøndelag", RegionCode: "50", Postal: "7011",
			City: "Trondheim", TimeZone: "Europe/Oslo", Lat: 63.416667, Lon: 10.416667, ASN: 59795, Org: "Hosting4Real"},
		geotest.Record{Prefix: "198.51.100.0/24", Country: "SE", City: "Stockholm"},
	))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return &Handler{
		Geo:        db,
		LookupAddr: testHandler(tb).LookupAddr,
		Ports: &PortCheck{
			Guard: netguard.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
			Quota: outbound.NewQuota(100, time.Minute, nil),
		},
	}
}

// TestEchoipCompatible asks what echoip's own tests and README document
// and expects echoip's answers (Veil's JSON has more fields; the ones
// echoip gives must be there and equal).
func TestEchoipCompatible(t *testing.T) {
	h := echoipHandler(t)
	open, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	go func() {
		for {
			c, err := open.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	openPort := strconv.Itoa(open.Addr().(*net.TCPAddr).Port)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()

	const jsonType, curl = "application/json", "curl/7.2.6.0"
	tests := []struct {
		name, method, path, ua, accept string
		code                           int
		text                           string         // the whole body, for plain answers
		json                           map[string]any // fields that must be there, for JSON answers
	}{
		{name: "curl at root", path: "/", ua: "curl/7.43.0", code: 200, text: "127.0.0.1\n"},
		{name: "text/plain at root", path: "/", ua: "foo/bar", accept: "text/plain", code: 200, text: "127.0.0.1\n"},
		{name: "ip", path: "/ip", code: 200, text: "127.0.0.1\n"},
		{name: "country", path: "/country", code: 200, text: "Norway\n"},
		{name: "country-iso", path: "/country-iso", code: 200, text: "NO\n"},
		{name: "city", path: "/city", code: 200, text: "Trondheim\n"},
		{name: "coordinates", path: "/coordinates", code: 200, text: "63.416667,10.416667\n"},
		{name: "asn", path: "/asn", code: 200, text: "AS59795\n"},
		{name: "asn-org", path: "/asn-org", code: 200, text: "Hosting4Real\n"},
		{name: "unknown path", path: "/foo", code: 404, text: "404 page not found"},
		{name: "JSON at root", path: "/", ua: curl, accept: jsonType, code: 200, json: map[string]any{
			"ip": "127.0.0.1", "ip_decimal": 2130706433.0, "country": "Norway", "country_iso": "NO", "country_eu": false,
			"region_name": "Trøndelag", "region_code": "50", "zip_code": "7011", "city": "Trondheim",
			"latitude": 63.416667, "longitude": 10.416667, "time_zone": "Europe/Oslo",
			"asn": "AS59795", "asn_org": "Hosting4Real", "hostname": "host-127-0-0-1.example",
			"user_agent": map[string]any{"product": "curl", "version": "7.2.6.0", "raw_value": curl},
		}},
		{name: "json path", path: "/json", ua: "Mozilla/5.0 (X11; Linux x86_64)", code: 200, json: map[string]any{
			"ip": "127.0.0.1",
			"user_agent": map[string]any{"product": "Mozilla", "version": "5.0", "comment": "(X11; Linux x86_64)",
				"raw_value": "Mozilla/5.0 (X11; Linux x86_64)"},
		}},
		{name: "EU country", path: "/json?ip=198.51.100.1", code: 200, json: map[string]any{"country_eu": true, "ip_decimal": 3325256705.0}},
		{name: "IPv6 decimal", path: "/json?ip=2001:db8::1", code: 200, json: map[string]any{"ip_decimal": 42540766411282592856903984951653826561.0}},
		{name: "port: not a number", path: "/port/foo", accept: jsonType, code: 400, json: map[string]any{"status": 400.0, "error": "invalid port: foo"}},
		{name: "port: zero", path: "/port/0", accept: jsonType, code: 400, json: map[string]any{"status": 400.0, "error": "invalid port: 0"}},
		{name: "port: too big", path: "/port/65537", accept: jsonType, code: 400, json: map[string]any{"status": 400.0, "error": "invalid port: 65537"}},
		{name: "port: open", path: "/port/" + openPort, accept: jsonType, code: 200,
			json: map[string]any{"ip": "127.0.0.1", "port": float64(open.Addr().(*net.TCPAddr).Port), "reachable": true}},
		{name: "port: closed", path: "/port/" + closedPort, code: 200,
			json: map[string]any{"ip": "127.0.0.1", "port": float64(l.Addr().(*net.TCPAddr).Port), "reachable": false}},
		{name: "port: ?ip= is not used", path: "/port/" + openPort + "?ip=1.3.3.7", accept: jsonType, code: 200,
			json: map[string]any{"ip": "127.0.0.1", "reachable": true}},
		{name: "unknown path, JSON", path: "/foo", accept: jsonType, code: 404, json: map[string]any{"status": 404.0, "error": "404 page not found"}},
		{name: "health", path: "/health", code: 200, text: `{"status":"OK"}`},
		{name: "HEAD", method: "HEAD", path: "/", code: 204, text: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "GET"
			}
			req := httptest.NewRequest(method, tt.path, nil)
			req.RemoteAddr = "127.0.0.1:50000"
			req.Header.Set("User-Agent", tt.ua)
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			rec := serve(h, req)
			if rec.Code != tt.code {
				t.Fatalf("%s %s: %d %q, want %d", method, tt.path, rec.Code, rec.Body, tt.code)
			}
			if tt.json == nil {
				if rec.Body.String() != tt.text {
					t.Errorf("%s %s: %q, want %q", method, tt.path, rec.Body, tt.text)
				}
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != jsonType {
				t.Errorf("Content-Type %q", ct)
			}
			var got map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("%s: %v in %s", tt.path, err, rec.Body)
			}
			for k, want := range tt.json {
				if !reflect.DeepEqual(got[k], want) {
					t.Errorf("%s: %q = %#v, want %#v", tt.path, k, got[k], want)
				}
			}
		})
	}
}

// TestPortCheckLimits: /port/ is off without a PortCheck, refuses
// visitors the egress guard refuses, and counts against the quota.
func TestPortCheckLimits(t *testing.T) {
	get := func(h *Handler, remote string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/port/80", nil)
		req.RemoteAddr = remote
		return serve(h, req)
	}
	if rec := get(&Handler{}, "198.51.100.1:1"); rec.Code != 404 {
		t.Errorf("without a PortCheck: %d, want 404", rec.Code)
	}
	h := &Handler{Ports: &PortCheck{Quota: outbound.NewQuota(1, time.Minute, nil)}}
	for _, remote := range []string{"10.1.2.3:1", "127.0.0.1:1", "[::1]:1"} {
		if rec := get(h, remote); rec.Code != http.StatusForbidden {
			t.Errorf("visitor %s: %d %s, want 403", remote, rec.Code, rec.Body)
		}
	}
	// A refused visitor cost no quota; once loopback is allowed, the
	// first check runs (port 80 open or not) and the second is over.
	h.Ports.Guard.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	if rec := get(h, "127.0.0.1:1"); rec.Code != 200 {
		t.Errorf("first check: %d %s", rec.Code, rec.Body)
	}
	if rec := get(h, "127.0.0.1:1"); rec.Code != http.StatusTooManyRequests {
		t.Errorf("over the quota: %d %s, want 429", rec.Code, rec.Body)
	}
}

func TestParseUserAgent(t *testing.T) {
	for in, want := range map[string]UserAgent{
		"curl/7.26.0":                 {Product: "curl", Version: "7.26.0"},
		"Wget/1.13.4 (linux-gnu)":     {Product: "Wget", Version: "1.13.4", Comment: "(linux-gnu)"},
		"Safari/537.36 (KHTML, like)": {Product: "Safari", Version: "537.36", Comment: "(KHTML, like)"},
		"HTTPie/0.9.3":                {Product: "HTTPie", Version: "0.9.3"},
		"foo":                         {Product: "foo"},
		"foo bar":                     {Product: "foo", Comment: "bar"},
		"foo/bar":                     {Product: "foo", Comment: "bar"},
	} {
		want.RawValue = in
		if got := parseUserAgent(in); *got != want {
			t.Errorf("parseUserAgent(%q) = %+v, want %+v", in, *got, want)
		}
	}
}
