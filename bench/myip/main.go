// Command myip serves the My IP tool alone, for the benchmark in run.sh
// and for trying the page by hand:
//
//	go run ./bench/myip -addr 127.0.0.1:8081 -geo ./veil-data
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"time"

	"veil/internal/geo"
	"veil/internal/tools/dnsleak"
	"veil/internal/tools/myip"
	"veil/internal/web"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "HTTP listen address")
	geoDir := flag.String("geo", "", "directory with the mmdb files (make geoip)")
	rdns := flag.Bool("rdns", false, "do reverse DNS lookups")
	leakZone := flag.String("leak-zone", "", "DNS leak test zone; empty: no leak test")
	leakAddr := flag.String("leak-addr", "127.0.0.1:5353", "DNS leak server UDP/TCP address")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile here until interrupted")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "myip:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if err := run(*addr, *geoDir, *rdns, *leakZone, *leakAddr); err != nil {
		fmt.Fprintln(os.Stderr, "myip:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(addr, geoDir string, rdns bool, leakZone, leakAddr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var db *geo.DB
	if geoDir != "" {
		var err error
		if db, err = geo.OpenDir(geoDir); err != nil {
			return err
		}
		defer db.Close()
	}
	mux := http.NewServeMux()
	web.Register(mux)
	h := &myip.Handler{Geo: db, DisableReverseDNS: !rdns}
	if leakZone != "" {
		leak, err := dnsleak.New(dnsleak.Config{Zone: leakZone, Addr: leakAddr, Geo: db})
		if err != nil {
			return err
		}
		if _, err := leak.Start(ctx); err != nil {
			return err
		}
		leak.Register(mux)
		h.DNSLeak = leak
	}
	h.Register(mux)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Shutdown(context.Background())
	}()
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		return err
	}
	return nil
}
