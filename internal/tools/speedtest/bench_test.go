package speedtest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// The handlers' own cost, one stream on loopback:
//
//	go test -run '^$' -bench . -benchtime 20x ./internal/tools/speedtest
//
// Each iteration moves 100 MiB, as one LibreSpeed download request
// (ckSize=100) would. bench/speedtest/run.sh measures the whole server
// with parallel streams against the loopback limit and LibreSpeed's Go
// backend.
const benchBytes = 100 << 20

func benchServer(b *testing.B) *httptest.Server {
	mux := http.NewServeMux()
	(&Handler{}).Register(mux)
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	return srv
}

func BenchmarkDownload(b *testing.B) {
	srv := benchServer(b)
	c := srv.Client()
	b.SetBytes(benchBytes)
	for b.Loop() {
		resp, err := c.Get(srv.URL + "/speedtest/backend/garbage.php?ckSize=100")
		if err != nil {
			b.Fatal(err)
		}
		if n, _ := io.Copy(io.Discard, resp.Body); n != benchBytes {
			b.Fatalf("%d bytes", n)
		}
		resp.Body.Close()
	}
}

func BenchmarkUpload(b *testing.B) {
	srv := benchServer(b)
	c := srv.Client()
	b.SetBytes(benchBytes)
	for b.Loop() {
		resp, err := c.Post(srv.URL+"/speedtest/backend/empty.php", "application/octet-stream",
			io.LimitReader(repeat(garbage()), benchBytes))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// repeat reads b over and over.
func repeat(b []byte) io.Reader { return &repeater{b: b} }

type repeater struct {
	b   []byte
	off int
}

func (r *repeater) Read(p []byte) (int, error) {
	n := copy(p, r.b[r.off:])
	r.off = (r.off + n) % len(r.b)
	return n, nil
}
