// Command dns runs Veil's resolver, or a synthetic authoritative hierarchy
// for it to recurse through, for bench/dns/run.sh. It is a benchmark tool,
// not part of the product.
//
//	go run ./bench/dns -resolver -addr 127.0.0.1:5300 -root-hints hints.root
//	go run ./bench/dns -hierarchy
//
// -hierarchy serves, on port 53 of loopback addresses:
//
//	127.0.0.2  the root       bench. -> 127.0.0.3
//	127.0.0.3  bench.         zone.bench. -> 127.0.0.4, plain.bench. -> 127.0.0.5
//	127.0.0.4  zone.bench.    hit0 ... hitN-1 and miss0 ... missM-1, A records, TTL 1 day
//	127.0.0.5  plain.bench.   the same names
//
// With -sign FILE the root, bench. and zone.bench. are signed (ECDSA P-256,
// NSEC) with keys made at start and the root's DS goes to FILE, for the
// resolvers to validate from (-resolver -trust-anchor FILE; Unbound's
// trust-anchor-file). plain.bench. stays unsigned, an insecure delegation
// (no DS in bench.): the benchmark's unsigned set.
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
	"runtime/trace"
	"slices"
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
		readers   = flag.Int("readers", 1, "goroutines reading each UDP socket")
		rcvbuf    = flag.Int("rcvbuf", 4<<20, "receive buffer of each UDP socket (run.sh gives Unbound the same so-rcvbuf)")
		cpuprof   = flag.String("cpuprofile", "", "write a CPU profile to this file until the process is stopped")
		traceFile = flag.String("trace", "", "write an execution trace (runtime/trace) to this file until the process is stopped")
		sign      = flag.String("sign", "", "with -hierarchy: sign the zones and write the root's DS to this file")
		hits      = flag.Int("hits", 1000, "with -hierarchy: names hit0 ... in each leaf zone")
		misses    = flag.Int("misses", 20000, "with -hierarchy: names miss0 ... in each leaf zone")
		anchor    = flag.String("trust-anchor", "", "with -resolver: validate DNSSEC from this file (default: validation off, for the unsigned hierarchy)")
		jitter    = flag.Duration("jitter", 0, "instead of serving: spin on one thread this long and print the gaps of 200 µs or more in which it did not run")
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
	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			log.Fatal(err)
		}
		if err := trace.Start(f); err != nil {
			log.Fatal(err)
		}
		defer func() { trace.Stop(); f.Close() }()
	}
	if *jitter > 0 {
		fmt.Println(measureJitter(*jitter))
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch {
	case *runHier:
		for _, s := range hierarchy(*hierPort, *sign, *hits, *misses) {
			defer s.Shutdown()
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
			// One reader a socket, like Unbound's one thread a socket.
			// More readers of one socket take turns at its read lock, a
			// goroutine wake-up per datagram; they help only when the
			// kernel's spreading of clients over the sockets (by
			// address and port) puts most on one socket.
			for range max(1, *readers) {
				go func() {
					if err := res.ServePacket(ctx, pc); err != nil {
						log.Fatal(err)
					}
				}()
			}
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
// its name servers gets real answers. The two leaf zones hold the names
// hitI and missI (I below hits and misses) as A records of their own, not a
// wildcard: a validating resolver may answer a signed wildcard's names
// from the cached wildcard and its NSEC proof (RFC 8198) without asking,
// which would make the miss set hits.
func hierarchy(port int, anchor string, hits, misses int) []*dns.Server {
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
ns.zone.bench. 86400 IN A 127.0.0.4
plain.bench. 86400 IN NS ns.plain.bench.
ns.plain.bench. 86400 IN A 127.0.0.5`, "bench."),
		"127.0.0.4": leafZone("zone.bench.", "127.0.0.4", hits, misses),
		"127.0.0.5": leafZone("plain.bench.", "127.0.0.5", hits, misses),
	}
	if anchor != "" {
		zones = signed(zones, anchor)
	}
	var out []*dns.Server
	for ip, z := range zones {
		addr := netip.AddrPortFrom(netip.MustParseAddr(ip), uint16(port)).String()
		var h dns.Handler = z
		udp := 1
		if ip == "127.0.0.4" || ip == "127.0.0.5" {
			// The leaf servers answer every miss: a map, and a socket
			// (and reading goroutine) per CPU, so that they are not what
			// limits the resolvers.
			h, udp = newFastZone(z), runtime.GOMAXPROCS(0)
		}
		servers := []*dns.Server{{Addr: addr, Net: "tcp", Handler: h}}
		for range udp {
			servers = append(servers, &dns.Server{Addr: addr, Net: "udp", Handler: h, ReusePort: true})
		}
		for _, s := range servers {
			started, errc := make(chan struct{}), make(chan error, 1)
			s.NotifyStartedFunc = func() { close(started) }
			go func() { errc <- s.ListenAndServe() }()
			select {
			case <-started:
			case err := <-errc:
				log.Fatalf("serving %s/%s: %v", addr, s.Net, err)
			}
			out = append(out, s)
		}
	}
	return out
}

// leafZone returns the zone apex, served from ns, with the benchmark's
// names.
func leafZone(apex, ns string, hits, misses int) *dnstest.Zone {
	z := dnstest.MustZone(fmt.Sprintf("%s 86400 IN NS ns.%s\nns.%s 86400 IN A %s", apex, apex, apex, ns), apex)
	rrs := z.Records()
	a := net.IPv4(10, 0, 0, 1).To4()
	for _, set := range []struct {
		prefix string
		n      int
	}{{"hit", hits}, {"miss", misses}} {
		for i := range set.n {
			rrs = append(rrs, &dns.A{Hdr: dns.RR_Header{Name: fmt.Sprintf("%s%d.%s", set.prefix, i, apex), Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 86400}, A: a})
		}
	}
	return dnstest.NewSignedZone([]string{apex}, rrs)
}

// fastZone answers the positive questions of a large leaf zone from a
// map (dnstest.Zone looks records up by scanning them all, which at
// tens of thousands of names would make the authoritative server the
// benchmark's bottleneck), and everything else through the zone.
type fastZone struct {
	zone *dnstest.Zone
	sets map[rrKey][]dns.RR // the records of each owner and type
	sigs map[rrKey][]dns.RR // the RRSIGs over them
}

type rrKey struct {
	owner string
	rtype uint16
}

func newFastZone(z *dnstest.Zone) *fastZone {
	f := &fastZone{zone: z, sets: map[rrKey][]dns.RR{}, sigs: map[rrKey][]dns.RR{}}
	for _, rr := range z.Records() {
		h := rr.Header()
		if sig, ok := rr.(*dns.RRSIG); ok {
			k := rrKey{dns.CanonicalName(h.Name), sig.TypeCovered}
			f.sigs[k] = append(f.sigs[k], rr)
			continue
		}
		k := rrKey{dns.CanonicalName(h.Name), h.Rrtype}
		f.sets[k] = append(f.sets[k], rr)
	}
	return f
}

func (f *fastZone) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) == 1 && req.Question[0].Qtype == dns.TypeA {
		k := rrKey{dns.CanonicalName(req.Question[0].Name), dns.TypeA}
		if rrs, ok := f.sets[k]; ok {
			resp := new(dns.Msg)
			resp.SetReply(req)
			resp.Authoritative = true
			resp.Answer = rrs
			if opt := req.IsEdns0(); opt != nil {
				resp.SetEdns0(opt.UDPSize(), opt.Do())
				if opt.Do() {
					resp.Answer = append(slices.Clone(rrs), f.sigs[k]...)
				}
			}
			_ = w.WriteMsg(resp)
			return
		}
	}
	f.zone.ServeDNS(w, req)
}

// signed returns the hierarchy's zones signed but for plain.bench. (an
// insecure delegation: bench. holds no DS for it), each parent holding
// its child's DS, and writes the root's DS to anchor.
func signed(zones map[string]*dnstest.Zone, anchor string) map[string]*dnstest.Zone {
	type zone struct{ ip, apex string }
	order := []zone{{"127.0.0.4", "zone.bench."}, {"127.0.0.3", "bench."}, {"127.0.0.2", "."}}
	now := time.Now()
	var childDS *dns.DS
	out := map[string]*dnstest.Zone{"127.0.0.5": zones["127.0.0.5"]}
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

// measureJitter spins for d reading the clock and describes the gaps of
// 200 µs or more between two readings: time the CPU was taken from a
// runnable thread by the kernel or, in a virtual machine, the hypervisor.
// Every query in flight during such a gap waits it out, whichever server
// answers it, so the gaps bound what a p99.9 measured on this CPU can show.
func measureJitter(d time.Duration) string {
	const floor = 200 * time.Microsecond
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var gaps []time.Duration
	var lost time.Duration
	last := time.Now()
	for end := last.Add(d); last.Before(end); {
		now := time.Now()
		if g := now.Sub(last); g >= floor {
			gaps = append(gaps, g)
			lost += g
		}
		last = now
	}
	slices.Sort(gaps)
	largest := time.Duration(0)
	if len(gaps) > 0 {
		largest = gaps[len(gaps)-1]
	}
	return fmt.Sprintf("%d gaps of 200 µs or more in %v, %.1f ms in all, the largest %.2f ms",
		len(gaps), d, float64(lost)/1e6, float64(largest)/1e6)
}
