// Command dns runs Veil's resolver, or a synthetic authoritative hierarchy
// for it to recurse through, for bench/dns/run.sh. It is a benchmark tool,
// not part of the product.
//
//	go run ./bench/dns -resolver -addr 127.0.0.1:5300 -root-hints hints.root
//	go run ./bench/dns -hierarchy
//
// -hierarchy serves, on port 53 of loopback addresses:
//
//	127.0.0.2  the root      bench. -> 127.0.0.3
//	127.0.0.3  bench.        zone.bench. -> 127.0.0.4
//	127.0.0.4  zone.bench.   every name has an A record (a wildcard, TTL 1 day)
//
// With -sign FILE the three zones are signed (ECDSA P-256, NSEC) with keys
// made at start, and the root's DS goes to FILE, for the resolvers to
// validate from (-resolver -trust-anchor FILE; Unbound's trust-anchor-file).
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"veil/internal/dnstest"
	"veil/internal/netguard"
	"veil/internal/resolver"
)

func main() {
	var (
		addr      = flag.String("addr", "127.0.0.1:5300", "resolver listen address (UDP and TCP)")
		hints     = flag.String("root-hints", "", "root hints file (default: built-in IANA hints)")
		port      = flag.Int("upstream-port", 0, "port of upstream servers (default 53)")
		runRes    = flag.Bool("resolver", false, "run Veil's resolver")
		runHier   = flag.Bool("hierarchy", false, "run the synthetic authoritative hierarchy")
		hierPort  = flag.Int("hierarchy-port", 53, "port the hierarchy listens on")
		listeners = flag.Int("listeners", runtime.GOMAXPROCS(0), "UDP sockets sharing the address (SO_REUSEPORT)")
		rcvbuf    = flag.Int("rcvbuf", 4<<20, "receive buffer of each UDP socket (run.sh gives Unbound the same so-rcvbuf)")
		cpuprof   = flag.String("cpuprofile", "", "write a CPU profile to this file until the process is stopped")
		sign      = flag.String("sign", "", "with -hierarchy: sign the zones and write the root's DS to this file")
		anchor    = flag.String("trust-anchor", "", "with -resolver: validate DNSSEC from this file (default: validation off, for the unsigned hierarchy)")
	)
	flag.Parse()
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch {
	case *runHier:
		for _, s := range hierarchy(*hierPort, *sign) {
			defer s.Close()
		}
	case *runRes:
		res, err := resolver.New(resolver.Config{
			RootHints:     *hints,
			Port:          *port,
			TrustAnchor:   *anchor,
			DisableDNSSEC: *anchor == "",
			Allow:         func(a netip.Addr) bool { return a.IsLoopback() },
			Egress:        netguard.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}.Permit, // the bench hierarchy
			RateLimit:     -1,                                                                                 // dnsperf is one client sending as fast as it can
		})
		if err != nil {
			log.Fatal(err)
		}
		// UDP: Veil's own read loop on each socket, answering cache
		// hits without a goroutine per packet (Resolver.ServePacket).
		for range max(1, *listeners) {
			pc, err := listenUDP(*addr, *rcvbuf)
			if err != nil {
				log.Fatal(err)
			}
			defer pc.Close()
			go func() {
				if err := res.ServePacket(ctx, pc); err != nil {
					log.Fatal(err)
				}
			}()
		}
		tcp := &dns.Server{Addr: *addr, Net: "tcp", Handler: res, MsgAcceptFunc: res.AcceptMsg}
		ready := make(chan struct{})
		tcp.NotifyStartedFunc = func() { close(ready) }
		errc := make(chan error, 1)
		go func() { errc <- tcp.ListenAndServe() }()
		select {
		case <-ready:
		case err := <-errc:
			log.Fatalf("listening on %s/tcp: %v", *addr, err)
		}
		defer tcp.Shutdown()
	default:
		log.Fatal("give -resolver or -hierarchy")
	}
	fmt.Println("ready")
	<-ctx.Done()
}

// listenUDP opens one of several UDP sockets sharing addr (SO_REUSEPORT,
// so the kernel spreads clients over them) with a receive buffer of rcvbuf
// bytes, so that a burst while the process waits for a CPU is queued, not
// dropped.
func listenUDP(addr string, rcvbuf int) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		return cmp.Or(err, serr)
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s/udp: %w", addr, err)
	}
	if err := pc.(*net.UDPConn).SetReadBuffer(rcvbuf); err != nil {
		pc.Close()
		return nil, fmt.Errorf("setting receive buffer: %w", err)
	}
	return pc, nil
}

// hierarchy starts the root, TLD and authoritative servers. Each answers
// for its own zone's apex NS and name servers' addresses too, so that a
// resolver that primes (Unbound asks the root for ". NS" first) and checks
// its name servers gets real answers.
func hierarchy(port int, anchor string) []*dnstest.Server {
	zones := map[string]*dnstest.Zone{
		"127.0.0.2": dnstest.MustZone(`
. 86400 IN NS a.root.bench.
a.root.bench. 86400 IN A 127.0.0.2
bench. 86400 IN NS ns.bench.
ns.bench. 86400 IN A 127.0.0.3`, "."),
		"127.0.0.3": dnstest.MustZone(`
bench. 86400 IN NS ns.bench.
ns.bench. 86400 IN A 127.0.0.3
a.root.bench. 86400 IN A 127.0.0.2
zone.bench. 86400 IN NS ns.zone.bench.
ns.zone.bench. 86400 IN A 127.0.0.4`, "bench."),
		"127.0.0.4": dnstest.MustZone(`
zone.bench. 86400 IN NS ns.zone.bench.
ns.zone.bench. 86400 IN A 127.0.0.4
*.zone.bench. 86400 IN A 10.0.0.1`, "zone.bench."),
	}
	if anchor != "" {
		zones = signed(zones, anchor)
	}
	var out []*dnstest.Server
	for ip, z := range zones {
		s, err := dnstest.Serve(netip.AddrPortFrom(netip.MustParseAddr(ip), uint16(port)), z)
		if err != nil {
			log.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// signed returns the hierarchy's zones signed, each parent holding its
// child's DS, and writes the root's DS to anchor.
func signed(zones map[string]*dnstest.Zone, anchor string) map[string]*dnstest.Zone {
	type zone struct{ ip, apex, child string }
	order := []zone{{"127.0.0.4", "zone.bench.", ""}, {"127.0.0.3", "bench.", "zone.bench."}, {"127.0.0.2", ".", "bench."}}
	now := time.Now()
	var childDS *dns.DS
	out := map[string]*dnstest.Zone{}
	for _, z := range order { // children first: each parent signs its child's DS
		key, err := dnstest.NewKey(z.apex, true)
		if err != nil {
			log.Fatal(err)
		}
		rrs := zones[z.ip].Records()
		if childDS != nil {
			childDS.Hdr.Ttl = 86400
			rrs = append(rrs, childDS)
		}
		rrs, err = dnstest.Sign(z.apex, rrs, dnstest.Signing{Keys: []*dnstest.Key{key}, Inception: now.Add(-time.Hour), Expiration: now.Add(30 * 24 * time.Hour)})
		if err != nil {
			log.Fatal(err)
		}
		out[z.ip] = dnstest.NewSignedZone([]string{z.apex}, rrs)
		childDS = key.DS()
	}
	if err := os.WriteFile(anchor, []byte(childDS.String()+"\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	return out
}
