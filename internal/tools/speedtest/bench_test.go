package speedtest

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// The speed test's own ceiling on loopback, against the loopback limit
// (BenchmarkLoopbackTCP: the same bytes over a bare TCP connection):
//
//	go test -run '^$' -bench . -benchtime 20x ./internal/tools/speedtest
//
// Each iteration moves 100 MiB, as one LibreSpeed download request
// (ckSize=100) or upload stream would.
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

// BenchmarkLoopbackTCP is the limit: the same bytes written to a bare
// loopback TCP connection and read to the end.
func BenchmarkLoopbackTCP(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
	b.SetBytes(benchBytes)
	for b.Loop() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(c, io.LimitReader(repeat(garbage()), benchBytes)); err != nil {
			b.Fatal(err)
		}
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c) // until the reader has read everything and closed
		c.Close()
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
