package speedtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"veil/internal/geo"
	"veil/internal/geo/geotest"
	"veil/internal/tools/myip"
	"veil/internal/visitor"
	"veil/internal/visitor/visitortest"
)

func start(t *testing.T, h *Handler) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, method, url string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading: %v", method, url, err)
	}
	return resp, b
}

// TestLibreSpeedEndpoints checks what LibreSpeed's clients rely on: an
// empty uncached answer for ping, downloads of exactly ckSize MiB of
// incompressible bytes, uploads read to the end, getIP's JSON, and
// answers that other origins may read.
func TestLibreSpeedEndpoints(t *testing.T) {
	srv := start(t, &Handler{Visitor: func(*http.Request) (string, string, error) {
		return "192.0.2.1", "AS64500 Example AB, Sweden", nil
	}})
	be := srv.URL + "/speedtest/backend/"
	uncached := func(t *testing.T, resp *http.Response) {
		t.Helper()
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
			t.Errorf("Cache-Control %q, want no-store", cc)
		}
		if o := resp.Header.Get("Access-Control-Allow-Origin"); o != "*" {
			t.Errorf("Access-Control-Allow-Origin %q, want *", o)
		}
	}

	t.Run("ping", func(t *testing.T) {
		resp, b := do(t, "GET", be+"empty.php?r=0.5", nil)
		if resp.StatusCode != 200 || len(b) != 0 {
			t.Fatalf("GET empty.php: %d, %d bytes", resp.StatusCode, len(b))
		}
		uncached(t, resp)
	})

	t.Run("download", func(t *testing.T) {
		resp, b := do(t, "GET", be+"garbage.php?ckSize=3", nil)
		if resp.StatusCode != 200 || len(b) != 3<<20 || resp.Header.Get("Content-Length") != strconv.Itoa(3<<20) {
			t.Fatalf("ckSize=3: %d, %d bytes, Content-Length %s", resp.StatusCode, len(b), resp.Header.Get("Content-Length"))
		}
		uncached(t, resp)
		var seen [256]bool
		n := 0
		for _, c := range b[:4096] {
			if !seen[c] {
				seen[c] = true
				n++
			}
		}
		if n < 200 {
			t.Errorf("the first 4 KiB hold %d distinct byte values: not random", n)
		}
		if resp, b := do(t, "GET", be+"garbage.php", nil); resp.StatusCode != 200 || len(b) != defaultChunks<<20 {
			t.Errorf("no ckSize: %d, %d bytes, want %d MiB", resp.StatusCode, len(b), defaultChunks)
		}
	})

	t.Run("download size bounds", func(t *testing.T) {
		for _, bad := range []string{"0", "-1", "x", "1e3", strings.Repeat("9", 40)} {
			if resp, _ := do(t, "GET", be+"garbage.php?ckSize="+bad, nil); resp.StatusCode != 400 {
				t.Errorf("ckSize=%s: %d, want 400", bad, resp.StatusCode)
			}
		}
		resp, err := http.Get(be + "garbage.php?ckSize=100000")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.ContentLength != maxChunks<<20 {
			t.Errorf("ckSize=100000 offers %d bytes, want at most %d MiB", resp.ContentLength, maxChunks)
		}
	})

	t.Run("upload", func(t *testing.T) {
		resp, b := do(t, "POST", be+"empty.php", bytes.NewReader(make([]byte, 5<<20)))
		if resp.StatusCode != 200 || string(b) != strconv.Itoa(5<<20) {
			t.Fatalf("POST 5 MiB: %d %q, want 200 and the count read", resp.StatusCode, b)
		}
		uncached(t, resp)
	})

	t.Run("getIP", func(t *testing.T) {
		resp, b := do(t, "GET", be+"getIP.php?isp=true", nil)
		var ip IP
		if err := json.Unmarshal(b, &ip); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%d %q: %v", resp.StatusCode, b, err)
		}
		if ip.ProcessedString != "192.0.2.1 - AS64500 Example AB, Sweden" {
			t.Fatalf("processedString %q", ip.ProcessedString)
		}
	})

	t.Run("preflight", func(t *testing.T) {
		resp, _ := do(t, "OPTIONS", be+"empty.php", nil)
		if resp.StatusCode != 204 || !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") {
			t.Fatalf("OPTIONS: %d, methods %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Methods"))
		}
	})

	t.Run("server list", func(t *testing.T) {
		_, b := do(t, "GET", srv.URL+"/speedtest/servers.json", nil)
		var list []Server
		if err := json.Unmarshal(b, &list); err != nil || len(list) != 1 {
			t.Fatalf("%q: %v", b, err)
		}
		s := list[0]
		if s.Server != srv.URL+"/speedtest/" || s.DlURL != "backend/garbage.php" || s.UlURL != "backend/empty.php" || s.GetIPURL != "backend/getIP.php" {
			t.Fatalf("server entry %+v", s)
		}
		// The entry's URLs lead to the endpoints.
		if resp, _ := do(t, "GET", s.Server+s.PingURL, nil); resp.StatusCode != 200 {
			t.Fatalf("%s%s: %d", s.Server, s.PingURL, resp.StatusCode)
		}
	})
}

func TestVisitorWithoutDescriber(t *testing.T) {
	srv := start(t, &Handler{})
	_, b := do(t, "GET", srv.URL+"/speedtest/backend/getIP.php", nil)
	var ip IP
	if err := json.Unmarshal(b, &ip); err != nil || ip.ProcessedString != "127.0.0.1" || ip.RawISPInfo != (ISPInfo{IP: "127.0.0.1"}) {
		t.Fatalf("%q: %v, want the peer's address alone", b, err)
	}
}

func TestUploadLimit(t *testing.T) {
	srv := start(t, &Handler{MaxUpload: 1 << 20})
	resp, b := do(t, "POST", srv.URL+"/speedtest/backend/empty.php", bytes.NewReader(make([]byte, 2<<20)))
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("2 MiB over a 1 MiB limit: %d %q, want 413", resp.StatusCode, b)
	}
}

// TestTransferSlots: transfers beyond MaxTransfers are turned away with
// 503 and Retry-After, and a slot frees when its transfer ends.
func TestTransferSlots(t *testing.T) {
	srv := start(t, &Handler{MaxTransfers: 1})
	be := srv.URL + "/speedtest/backend/"
	held, err := http.Get(be + "garbage.php?ckSize=1024")
	if err != nil {
		t.Fatal(err)
	}
	// Read a little, so the handler is surely writing (and holds its slot).
	if _, err := io.ReadFull(held.Body, make([]byte, 1<<16)); err != nil {
		t.Fatal(err)
	}
	resp, _ := do(t, "POST", be+"empty.php", strings.NewReader("x"))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a second transfer while one runs: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp, _ := do(t, "GET", be+"empty.php", nil); resp.StatusCode != 200 {
		t.Fatalf("ping while a transfer runs: %d, want 200 (pings take no slot)", resp.StatusCode)
	}
	held.Body.Close()
	for i := 0; ; i++ {
		resp, _ := do(t, "POST", be+"empty.php", strings.NewReader("x"))
		if resp.StatusCode == 200 {
			break
		}
		if i == 100 {
			t.Fatalf("the slot was not freed: %d", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTransferShare: one visitor taking all the transfers it may does not
// stop another visitor behind the same proxy.
func TestTransferShare(t *testing.T) {
	who := visitor.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")})
	srv := start(t, &Handler{Visitors: who, MaxTransfers: 3, MaxPerVisitor: 2})
	be := srv.URL + "/speedtest/backend/"
	get := func(forwardedFor, path string, body io.Reader) *http.Response {
		t.Helper()
		method := "GET"
		if body != nil {
			method = "POST"
		}
		req, _ := http.NewRequest(method, be+path, body)
		req.Header.Set("X-Forwarded-For", forwardedFor)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	var refused *http.Response
	for range 3 {
		resp := get("198.51.100.1", "garbage.php?ckSize=1024", nil)
		if resp.StatusCode != 200 {
			refused = resp
			break
		}
		// Read a little, so the handler is surely writing.
		if _, err := io.ReadFull(resp.Body, make([]byte, 1<<16)); err != nil {
			t.Fatal(err)
		}
	}
	if refused == nil || refused.StatusCode != http.StatusTooManyRequests || refused.Header.Get("Retry-After") == "" {
		t.Fatalf("a visitor took every transfer slot; want 429 with Retry-After beyond its share of 2")
	}
	if resp := get("198.51.100.2", "empty.php", strings.NewReader("x")); resp.StatusCode != 200 {
		t.Fatalf("a second visitor's upload while the first holds its share: %d, want 200", resp.StatusCode)
	}
}

// TestSlowDownloadLosesSlot: a download nobody reads gives its slot back
// once its write deadline passes.
func TestSlowDownloadLosesSlot(t *testing.T) {
	srv := start(t, &Handler{MaxTransfers: 1, Pace: visitor.Pace{Step: 64 << 10, Within: 100 * time.Millisecond}})
	visitortest.Stall(t, srv.Listener.Addr().String(), "/speedtest/backend/garbage.php?ckSize=1024")
	upload := func() int {
		resp, _ := do(t, "POST", srv.URL+"/speedtest/backend/empty.php", strings.NewReader("x"))
		return resp.StatusCode
	}
	visitortest.WaitStatus(t, "an upload while the unread download runs", http.StatusServiceUnavailable, upload)
	visitortest.WaitStatus(t, "an upload after the unread download's deadline", http.StatusOK, upload)
}

// TestGetIPRawISPInfo: rawIspInfo is an object in the shape LibreSpeed's
// own backend gives (ipinfo.io's), read here as librespeed-cli reads it,
// filled from what My IP knows of the visitor.
func TestGetIPRawISPInfo(t *testing.T) {
	db, err := geo.Open(geotest.Write(t, geotest.GeoIP2, geotest.Record{
		Prefix: "127.0.0.0/8", Country: "SE", Region: "Stockholm County", Postal: "111 22", City: "Stockholm",
		TimeZone: "Europe/Stockholm", Lat: 59.33, Lon: 18.06, ASN: 64500, Org: "Example AB",
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ip := &myip.Handler{Geo: db, LookupAddr: func(ctx context.Context, addr string) ([]string, error) {
		return []string{"host.example."}, nil
	}}
	srv := start(t, &Handler{Visitor: ip.Describe, Lookup: ip.Lookup})
	_, b := do(t, "GET", srv.URL+"/speedtest/backend/getIP.php?isp=true&distance=km", nil)
	var got struct {
		ProcessedString string          `json:"processedString"`
		RawISPInfo      json.RawMessage `json:"rawIspInfo"`
	}
	if err := json.Unmarshal(b, &got); err != nil || !bytes.HasPrefix(got.RawISPInfo, []byte("{")) {
		t.Fatalf("%s: %v; want rawIspInfo as an object", b, err)
	}
	var info map[string]string
	if err := json.Unmarshal(got.RawISPInfo, &info); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"ip": "127.0.0.1", "hostname": "host.example", "city": "Stockholm", "region": "Stockholm County",
		"country": "SE", "loc": "59.3300,18.0600", "org": "AS64500 Example AB", "postal": "111 22",
		"timezone": "Europe/Stockholm", "readme": "",
	}
	if !reflect.DeepEqual(info, want) {
		t.Errorf("rawIspInfo = %v\nwant %v", info, want)
	}
	if got.ProcessedString != "127.0.0.1 - AS64500 Example AB, Sweden" {
		t.Errorf("processedString %q", got.ProcessedString)
	}
}
