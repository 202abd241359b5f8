package myip

import (
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"veil/internal/geo"
)

// BenchmarkJSON measures /json for one lookup. With VEIL_GEOIP_DIR set to
// a dir filled by `make geoip`, it uses the real databases.
func BenchmarkJSON(b *testing.B) {
	db := testGeo(b)
	if dir := os.Getenv("VEIL_GEOIP_DIR"); dir != "" {
		var err error
		if db, err = geo.OpenDir(dir); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
	}
	h := &Handler{Geo: db, DisableReverseDNS: true}
	mux := http.NewServeMux()
	h.Register(mux)
	req := httptest.NewRequest("GET", "/json?ip=81.2.69.142", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}
