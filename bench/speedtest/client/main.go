// Command client measures a LibreSpeed-style backend the way LibreSpeed's
// clients do: several parallel streams, each downloading
// garbage.php?ckSize=100 (or uploading 20 MiB bodies to empty.php) over
// and over for a fixed time, and reports the Mbit/s moved. The limit
// these are measured against is the same streams writing the same bytes
// to bare loopback TCP connections: -mode tcp against a -sink.
//
// Usage: client -base http://127.0.0.1:8080/speedtest/backend/ -mode download -streams 4 -seconds 10
//
//	client -sink 127.0.0.1:18085                      # reads and drops what it is sent
//	client -base 127.0.0.1:18085 -mode tcp -streams 4
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	base := flag.String("base", "", "the backend's URL, ending in /; for -mode tcp, a sink's HOST:PORT")
	mode := flag.String("mode", "download", "download, upload or tcp")
	sink := flag.String("sink", "", "serve as a TCP sink on this address instead")
	streams := flag.Int("streams", 4, "parallel connections")
	seconds := flag.Float64("seconds", 10, "how long to measure")
	flag.Parse()
	if *sink != "" {
		serveSink(*sink)
		return
	}
	if *base == "" || (*mode != "download" && *mode != "upload" && *mode != "tcp") {
		flag.Usage()
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(*seconds*float64(time.Second)))
	defer cancel()
	tr := &http.Transport{MaxIdleConnsPerHost: *streams, DisableCompression: true}
	c := &http.Client{Transport: tr}
	block := make([]byte, 1<<20)
	rand.Read(block)
	var moved atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, *streams)
	start := time.Now()
	for range *streams {
		wg.Go(func() {
			for ctx.Err() == nil {
				var err error
				switch *mode {
				case "download":
					err = download(ctx, c, *base, &moved)
				case "upload":
					err = upload(ctx, c, *base, block, &moved)
				case "tcp":
					err = raw(ctx, *base, block, &moved)
				}
				if err != nil && ctx.Err() == nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	select {
	case err := <-errs:
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	default:
	}
	fmt.Printf("%.0f\n", float64(moved.Load())*8/1e6/elapsed.Seconds())
}

func download(ctx context.Context, c *http.Client, base string, moved *atomic.Int64) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"garbage.php?ckSize=100", nil)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("download: %s", resp.Status)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	moved.Add(n)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

func upload(ctx context.Context, c *http.Client, base string, block []byte, moved *atomic.Int64) error {
	body := &counter{r: io.LimitReader(&repeat{b: block}, 20<<20), n: moved}
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"empty.php", body)
	req.ContentLength = 20 << 20
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("upload: %s", resp.Status)
	}
	return nil
}

// raw writes block over and over to a bare TCP connection until ctx ends.
func raw(ctx context.Context, addr string, block []byte, moved *atomic.Int64) error {
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	for {
		n, err := c.Write(block)
		moved.Add(int64(n))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// serveSink reads and drops whatever each connection sends.
func serveSink(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "client:", err)
			os.Exit(1)
		}
		go func() {
			io.Copy(io.Discard, c)
			c.Close()
		}()
	}
}

// counter counts what the request body hands to the connection.
type counter struct {
	r io.Reader
	n *atomic.Int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// repeat reads b over and over.
type repeat struct {
	b   []byte
	off int
}

func (r *repeat) Read(p []byte) (int, error) {
	n := copy(p, r.b[r.off:])
	r.off = (r.off + n) % len(r.b)
	return n, nil
}
