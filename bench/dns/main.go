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
//	127.0.0.4  zone.bench.   every name has an A record (TTL 1 day)
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"hash/fnv"
	"log"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

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
	var servers []*dns.Server
	switch {
	case *runHier:
		servers = hierarchy(*hierPort)
	case *runRes:
		res, err := resolver.New(resolver.Config{
			RootHints: *hints,
			Port:      *port,
			Allow:     func(a netip.Addr) bool { return a.IsLoopback() },
			RateLimit: -1, // dnsperf is one client sending as fast as it can
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
		servers = append(servers, &dns.Server{Addr: *addr, Net: "tcp", Handler: res, MsgAcceptFunc: res.AcceptMsg})
	default:
		log.Fatal("give -resolver or -hierarchy")
	}
	for _, s := range servers {
		ready := make(chan struct{})
		s.NotifyStartedFunc = func() { close(ready) }
		errc := make(chan error, 1)
		go func() { errc <- s.ListenAndServe() }()
		select {
		case <-ready:
		case err := <-errc:
			log.Fatalf("listening on %s/%s: %v", s.Addr, s.Net, err)
		}
	}
	fmt.Println("ready")
	<-ctx.Done()
	for _, s := range servers {
		s.Shutdown()
	}
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
func hierarchy(port int) []*dns.Server {
	zones := map[string]dns.HandlerFunc{
		"127.0.0.2": referral(".", "a.root.bench.", "bench.", "ns.bench.", "127.0.0.3", nil),
		"127.0.0.3": referral("bench.", "ns.bench.", "zone.bench.", "ns.zone.bench.", "127.0.0.4",
			map[string]string{"a.root.bench.": "127.0.0.2", "ns.bench.": "127.0.0.3"}),
		"127.0.0.4": authoritative("zone.bench."),
	}
	var out []*dns.Server
	for ip, h := range zones {
		a := net.JoinHostPort(ip, fmt.Sprint(port))
		out = append(out, &dns.Server{Addr: a, Net: "udp", Handler: h}, &dns.Server{Addr: a, Net: "tcp", Handler: h})
	}
	return out
}

// glue is an A record.
func glue(name, ip string) dns.RR {
	return &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 86400}, A: net.ParseIP(ip)}
}

// referral serves zone, whose name server is self: it delegates every
// name under child to ns at ip, answers its apex NS, and the addresses of
// the names in hosts; any other name does not exist.
func referral(zone, self, child, ns, ip string, hosts map[string]string) dns.HandlerFunc {
	selfIP := map[string]string{"a.root.bench.": "127.0.0.2", "ns.bench.": "127.0.0.3"}[self]
	return func(w dns.ResponseWriter, req *dns.Msg) {
		resp := new(dns.Msg)
		resp.SetReply(req)
		q := req.Question[0]
		name := strings.ToLower(q.Name)
		switch {
		case dns.IsSubDomain(child, name):
			resp.Ns = []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: child, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 86400}, Ns: ns}}
			resp.Extra = []dns.RR{glue(ns, ip)}
		case name == zone && q.Qtype == dns.TypeNS:
			resp.Authoritative = true
			resp.Answer = []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 86400}, Ns: self}}
			resp.Extra = []dns.RR{glue(self, selfIP)}
		case hosts[name] != "":
			resp.Authoritative = true
			if q.Qtype == dns.TypeA {
				resp.Answer = []dns.RR{glue(name, hosts[name])}
			}
		default:
			resp.Authoritative = true
			resp.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(resp)
	}
}

// authoritative answers A for every name under zone, with an address
// derived from the name.
func authoritative(zone string) dns.HandlerFunc {
	return func(w dns.ResponseWriter, req *dns.Msg) {
		resp := new(dns.Msg)
		resp.SetReply(req)
		resp.Authoritative = true
		q := req.Question[0]
		if strings.EqualFold(q.Name, "ns."+zone) && q.Qtype == dns.TypeA {
			resp.Answer = []dns.RR{glue(q.Name, "127.0.0.4")}
		} else if q.Qtype == dns.TypeA {
			h := fnv.New32a()
			h.Write([]byte(strings.ToLower(q.Name)))
			v := h.Sum32()
			resp.Answer = []dns.RR{&dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 86400},
				A:   net.IPv4(10, byte(v>>16), byte(v>>8), byte(v)),
			}}
		} else {
			resp.Ns = []dns.RR{&dns.SOA{
				Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 3600},
				Ns:  "ns." + zone, Mbox: "host." + zone, Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 3600,
			}}
		}
		w.WriteMsg(resp)
	}
}
