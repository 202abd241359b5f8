package myip

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"veil/internal/geo"
	"veil/internal/geo/geotest"
	"veil/internal/visitor"
)

func testGeo(tb testing.TB) *geo.DB {
	tb.Helper()
	db, err := geo.Open(geotest.Write(tb, geotest.Flat,
		geotest.Record{Prefix: "203.0.113.0/24", Country: "SE", City: "Stockholm", TimeZone: "Europe/Stockholm", Lat: 59.3, Lon: 18.1, ASN: 64500, Org: "Veil Test AB"},
		geotest.Record{Prefix: "198.51.100.0/24", Country: "DE", City: "Berlin", ASN: 64501, Org: "Home ISP"},
	))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func testHandler(tb testing.TB) *Handler {
	return &Handler{
		Geo: testGeo(tb),
		Gateway: func(ip netip.Addr) (string, bool) {
			if ip == netip.MustParseAddr("203.0.113.7") {
				return "se-sto-1", true
			}
			return "", false
		},
		LookupAddr: func(ctx context.Context, addr string) ([]string, error) {
			return []string{"host-" + strings.ReplaceAll(addr, ".", "-") + ".example."}, nil
		},
	}
}

func serve(h *Handler, req *http.Request) *httptest.ResponseRecorder {
	mux := http.NewServeMux()
	h.Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	return rec
}

func TestEndpoints(t *testing.T) {
	h := testHandler(t)
	tests := []struct {
		name, path, remote, ua, accept string
		code                           int
		body                           string // substring expected
	}{
		{"curl at root", "/", "203.0.113.7:1234", "curl/8.5.0", "*/*", 200, "203.0.113.7\n"},
		{"browser at root", "/", "203.0.113.7:1234", "Mozilla/5.0", "text/html", 200, "You are protected"},
		{"browser at root, not ours", "/", "198.51.100.9:1234", "Mozilla/5.0", "text/html", 200, "You are not protected"},
		{"page attribution", "/", "198.51.100.9:1234", "Mozilla/5.0", "text/html", 200, "db-ip.com"},
		{"json client at root", "/", "198.51.100.9:1234", "", "application/json", 200, `{"ip":"198.51.100.9",`},
		{"text client at root", "/", "198.51.100.9:1234", "", "text/plain", 200, "198.51.100.9\n"},
		{"ip", "/ip", "198.51.100.9:1234", "", "", 200, "198.51.100.9\n"},
		{"ip v6", "/ip", "[2001:db8::1]:1234", "", "", 200, "2001:db8::1\n"},
		{"country", "/country", "198.51.100.9:1", "", "", 200, "Germany\n"},
		{"country-iso", "/country-iso", "198.51.100.9:1", "", "", 200, "DE\n"},
		{"city", "/city", "198.51.100.9:1", "", "", 200, "Berlin\n"},
		{"asn", "/asn", "198.51.100.9:1", "", "", 200, "AS64501\n"},
		{"asn-org", "/asn-org", "198.51.100.9:1", "", "", 200, "Home ISP\n"},
		{"unknown", "/city", "192.0.2.1:1", "", "", 200, "unknown\n"},
		{"lookup", "/city?ip=203.0.113.1", "198.51.100.9:1", "", "", 200, "Stockholm\n"},
		{"lookup at root", "/?ip=203.0.113.1", "198.51.100.9:1", "curl/8", "", 200, "203.0.113.1\n"},
		{"bad lookup", "/country?ip=nope", "198.51.100.9:1", "", "", 400, "not an IP"},
		{"bad json lookup", "/json?ip=nope", "198.51.100.9:1", "", "", 400, "not an IP"},
		{"json", "/json", "203.0.113.7:1", "", "", 200, `"gateway":"se-sto-1"`},
		{"api", "/api/v1/ip?ip=198.51.100.3", "203.0.113.7:1", "", "", 200, `"hostname":"host-198-51-100-3.example"`},
		{"not root", "/nothing", "203.0.113.7:1", "", "", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", tt.path, nil)
			req.RemoteAddr = tt.remote
			req.Header.Set("User-Agent", tt.ua)
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			rec := serve(h, req)
			if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.body) {
				t.Errorf("GET %s: %d %q, want %d containing %q", tt.path, rec.Code, rec.Body.String(), tt.code, tt.body)
			}
		})
	}
}

func TestJSONReport(t *testing.T) {
	h := testHandler(t)
	req := httptest.NewRequest("GET", "/api/v1/ip", nil)
	req.RemoteAddr = "203.0.113.7:4000"
	req.Header.Set("Via", "1.1 squid")
	rec := serve(h, req)
	var rep Report
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.IP != "203.0.113.7" || rep.Country != "Sweden" || rep.CountryISO != "SE" || rep.City != "Stockholm" ||
		rep.TimeZone != "Europe/Stockholm" || rep.ASN != "AS64500" || rep.ASNOrg != "Veil Test AB" ||
		!rep.Protected || rep.Gateway != "se-sto-1" || rep.CountryLanguage != "sv" || rep.Latitude == nil {
		t.Errorf("report = %+v", rep)
	}
	if len(rep.ProxyHeaders) != 1 || rep.ProxyHeaders[0].Name != "Via" {
		t.Errorf("proxy headers = %+v", rep.ProxyHeaders)
	}
	if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("CORS header %q", got)
	}
}

func TestNoGeo(t *testing.T) {
	h := &Handler{DisableReverseDNS: true}
	req := httptest.NewRequest("GET", "/json", nil)
	req.RemoteAddr = "203.0.113.7:1"
	var rep Report
	json.Unmarshal(serve(h, req).Body.Bytes(), &rep)
	if rep.Country != "unknown" || rep.City != "unknown" || rep.ASN != "unknown" || rep.ASNOrg != "unknown" || rep.Protected {
		t.Errorf("report without databases = %+v", rep)
	}
}

func TestClientAddrAndProxyHeaders(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		remote  string
		headers map[string]string
		wantIP  string
		wantHdr []string
	}{
		{"no proxy", nil, "198.51.100.9:1", nil, "198.51.100.9", nil},
		{"untrusted xff ignored", nil, "198.51.100.9:1", map[string]string{"X-Forwarded-For": "192.0.2.5"}, "198.51.100.9", []string{"X-Forwarded-For"}},
		{"trusted proxy", trusted, "10.1.1.1:1", map[string]string{"X-Forwarded-For": "198.51.100.9", "X-Real-Ip": "198.51.100.9", "X-Forwarded-Proto": "https"}, "198.51.100.9", nil},
		{"trusted proxy, client behind another proxy", trusted, "10.1.1.1:1", map[string]string{"X-Forwarded-For": "192.0.2.5, 198.51.100.9"}, "198.51.100.9", []string{"X-Forwarded-For"}},
		{"trusted chain", trusted, "10.1.1.1:1", map[string]string{"X-Forwarded-For": "198.51.100.9, 10.2.2.2"}, "198.51.100.9", []string{"X-Forwarded-For"}},
		{"many proxy headers", nil, "198.51.100.9:1", map[string]string{"Forwarded": "for=192.0.2.5", "Via": "1.1 x", "Client-Ip": "192.0.2.5", "Cf-Connecting-Ip": "192.0.2.5"}, "198.51.100.9", []string{"Via", "Forwarded", "Client-Ip", "Cf-Connecting-Ip"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &Handler{Visitors: visitor.New(tt.trusted), DisableReverseDNS: true}
			req := httptest.NewRequest("GET", "/json", nil)
			req.RemoteAddr = tt.remote
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			var rep Report
			json.Unmarshal(serve(h, req).Body.Bytes(), &rep)
			var names []string
			for _, hd := range rep.ProxyHeaders {
				names = append(names, hd.Name)
			}
			if rep.IP != tt.wantIP || strings.Join(names, ",") != strings.Join(tt.wantHdr, ",") {
				t.Errorf("ip %s headers %v, want %s %v", rep.IP, names, tt.wantIP, tt.wantHdr)
			}
		})
	}
}

func TestBlocklists(t *testing.T) {
	asked := make(chan string, 10)
	h := &Handler{
		DisableReverseDNS: true,
		DNSBL:             []string{"listed.test", "clean.test", "slow.test", "broken.test"},
		LookupHost: func(ctx context.Context, host string) ([]string, error) {
			asked <- host
			switch {
			case strings.HasSuffix(host, ".listed.test"):
				return []string{"127.0.0.2"}, nil
			case strings.HasSuffix(host, ".clean.test"):
				return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
			case strings.HasSuffix(host, ".slow.test"):
				// Answers only after the others: the lookups run at once,
				// and the request's deadline ends this one.
				<-ctx.Done()
				return nil, ctx.Err()
			default:
				return nil, errors.New("servfail")
			}
		},
		DNSBLTimeout: 1, // expires at once; slow.test must be reported, not waited for
	}
	req := httptest.NewRequest("GET", "/json?ip=192.0.2.99", nil)
	var rep Report
	json.Unmarshal(serve(h, req).Body.Bytes(), &rep)
	got := map[string]Listing{}
	for _, l := range rep.Blocklists {
		got[l.Zone] = l
	}
	if len(asked) != 4 {
		t.Errorf("%d zones asked, want 4", len(asked))
	}
	if h := <-asked; !strings.HasPrefix(h, "99.2.0.192.") {
		t.Errorf("asked %q, want reversed address", h)
	}
	// With a deadline already passed, listed and clean may be seen as
	// timeouts too; only check that the slow one did not hang the
	// request and that every zone is reported.
	if len(got) != 4 || got["slow.test"].Error == "" || got["broken.test"].Error == "" {
		t.Errorf("blocklists = %+v", rep.Blocklists)
	}
}

func TestBlocklistAnswers(t *testing.T) {
	h := &Handler{
		DisableReverseDNS: true,
		DNSBL:             []string{"listed.test", "clean.test"},
		LookupHost: func(ctx context.Context, host string) ([]string, error) {
			if strings.HasSuffix(host, ".listed.test") {
				return []string{"127.0.0.2"}, nil
			}
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		},
	}
	req := httptest.NewRequest("GET", "/json?ip=192.0.2.99", nil)
	var rep Report
	json.Unmarshal(serve(h, req).Body.Bytes(), &rep)
	want := []Listing{{Zone: "listed.test", Listed: true}, {Zone: "clean.test"}}
	if len(rep.Blocklists) != 2 || rep.Blocklists[0] != want[0] || rep.Blocklists[1] != want[1] {
		t.Errorf("blocklists = %+v, want %+v", rep.Blocklists, want)
	}
}

func TestReverseName(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.99":  "99.2.0.192",
		"2001:db8::1": "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2",
	} {
		if got := reverseName(netip.MustParseAddr(in)); got != want {
			t.Errorf("reverseName(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestWantsPlain(t *testing.T) {
	for _, tt := range []struct {
		ua, accept string
		want       bool
	}{
		{"curl/8.5.0", "*/*", true},
		{"Wget/1.21", "*/*", true},
		{"HTTPie/3.2", "*/*", true},
		{"Mozilla/5.0 (X11; Linux x86_64)", "text/html,application/xhtml+xml", false},
		{"", "", false},
		{"", "text/plain", true},
	} {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("User-Agent", tt.ua)
		req.Header.Set("Accept", tt.accept)
		if got := wantsPlain(req); got != tt.want {
			t.Errorf("wantsPlain(%q, %q) = %v", tt.ua, tt.accept, got)
		}
	}
}

func TestFetch(t *testing.T) {
	h := testHandler(t)
	mux := http.NewServeMux()
	h.Register(mux)
	// The test server's peer is 127.0.0.1; call it a gateway.
	h.Gateway = func(ip netip.Addr) (string, bool) { return "lo-1", ip.IsLoopback() }
	srv := httptest.NewServer(mux)
	defer srv.Close()
	rep, err := Fetch(context.Background(), srv.Client(), srv.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	if rep.IP != "127.0.0.1" || !rep.Protected || rep.Gateway != "lo-1" {
		t.Errorf("Fetch = %+v", rep)
	}
	if _, err := Fetch(context.Background(), srv.Client(), srv.URL+"/nothing"); err == nil {
		t.Error("Fetch of a wrong URL succeeded")
	}
}

func TestCarried(t *testing.T) {
	h := testHandler(t)
	carried := netip.MustParseAddrPort("127.0.0.1:40001")
	h.Carried = func(ap netip.AddrPort) (string, bool) { return "local", ap == carried }
	h.Visitors = visitor.New([]netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")})
	tests := []struct {
		name, remote, path, xff string
		want                    bool
	}{
		{"through the built-in gateway", "127.0.0.1:40001", "/api/v1/ip", "", true},
		{"same host, another connection", "127.0.0.1:40002", "/api/v1/ip", "", false},
		{"asking about another address", "127.0.0.1:40001", "/api/v1/ip?ip=198.51.100.1", "", false},
		{"behind a trusted proxy", "192.0.2.1:40001", "/api/v1/ip", "198.51.100.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", tt.path, nil)
			req.RemoteAddr = tt.remote
			if tt.xff != "" {
				req.Header.Set("X-Forwarded-For", tt.xff)
			}
			var rep Report
			if err := json.Unmarshal(serve(h, req).Body.Bytes(), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Protected != tt.want || (tt.want && rep.Gateway != "local") {
				t.Errorf("protected = %v (gateway %q), want %v", rep.Protected, rep.Gateway, tt.want)
			}
		})
	}
}

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

// TestDescribe: the line other tools (the speed test) show for the
// visitor: address, gateway, network and country, leaving out what the
// databases do not know.
func TestDescribe(t *testing.T) {
	h := testHandler(t)
	for _, tc := range []struct{ remote, ip, network string }{
		{"203.0.113.7:1", "203.0.113.7", "Veil gateway se-sto-1, AS64500 Veil Test AB, Sweden"},
		{"198.51.100.9:1", "198.51.100.9", "AS64501 Home ISP, Germany"},
		{"192.0.2.1:1", "192.0.2.1", ""},
	} {
		req := httptest.NewRequest("GET", "/speedtest/backend/getIP.php", nil)
		req.RemoteAddr = tc.remote
		ip, network, err := h.Describe(req)
		if err != nil || ip != tc.ip || network != tc.network {
			t.Errorf("%s: %q %q %v, want %q %q", tc.remote, ip, network, err, tc.ip, tc.network)
		}
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "not an address"
	if _, _, err := h.Describe(req); err == nil {
		t.Error("a malformed peer address was described")
	}
}
