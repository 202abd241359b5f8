// Package ping is the site's ping tool: ICMP echo requests, or TCP
// connects for hosts that drop ICMP (and for servers that may open no
// ICMP socket), from the server to a host the visitor names, to the
// first of its addresses that the egress guard permits. Nothing is kept:
// not the host, not the times, not who asked.
package ping

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/idna"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"veil/internal/i18n"
	"veil/internal/netguard"
)

// Pinger sends echo requests.
type Pinger struct {
	// Guard decides which addresses may be pinged.
	Guard netguard.Guard
	// Resolve looks host names up; nil: the system's resolver.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
	// Interval is the time between requests (default 1 s); Timeout how
	// long each waits for its reply (default 2 s).
	Interval, Timeout time.Duration

	// listen opens ICMP sockets; nil: the package's listen. Tests take
	// ICMP away with it.
	listen func(v6 bool) (*icmp.PacketConn, bool, error)
}

// MaxCount bounds the requests of one ping.
const MaxCount = 5

// Proto is how a ping asks.
type Proto string

// The protocols of a ping.
const (
	ICMP Proto = "icmp" // echo requests
	TCP  Proto = "tcp"  // connects to a port, timed to the handshake
)

// DefaultPort is the port of a TCP ping that names none: the one most
// hosts on the web answer on.
const DefaultPort = 443

// Request is one ping.
type Request struct {
	Host string
	// Count is the number of requests, 1 to MaxCount.
	Count int
	// Proto is ICMP when empty. An ICMP ping runs over TCP instead where
	// this server may open no ICMP socket, and Result.Note says so.
	Proto Proto
	// Port is the port of a TCP ping; 0 is DefaultPort.
	Port int
}

// Reply is the outcome of one request, as it comes.
type Reply struct {
	Seq int `json:"seq"`
	// RTT is the round trip in milliseconds, -1 when no reply came.
	RTT float64 `json:"rtt_ms"`
	// Status says why a TCP request got no reply: "refused" (the host
	// answered that the port is closed), "timeout" or "unreachable";
	// empty otherwise.
	Status string `json:"status,omitempty"`
}

// Result is what a ping found. RTTs holds one entry per request sent, in
// milliseconds, -1 for a request that got no reply.
type Result struct {
	Host    string `json:"host"`
	Address string `json:"address"`
	Proto   Proto  `json:"proto"`
	Port    int    `json:"port,omitempty"`
	// Note explains a change of protocol (no ICMP here: TCP instead).
	Note     string    `json:"note,omitempty"`
	Sent     int       `json:"sent"`
	Received int       `json:"received"`
	RTTs     []float64 `json:"rtt_ms"`
	Min      float64   `json:"min_ms"`
	Avg      float64   `json:"avg_ms"`
	Max      float64   `json:"max_ms"`
}

// Errors a caller tells apart.
var (
	ErrHost        error = i18n.NewError("ping.err.host")
	ErrUnavailable error = i18n.NewError("ping.err.unavailable")
	ErrPort        error = i18n.NewError("ping.err.port")
)

// CheckHost returns host as it is looked up: an address in canonical
// form, a name in lower-case ASCII (IDNA).
func CheckHost(host string) (string, error) {
	host = strings.TrimSpace(host)
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap().WithZone("").String(), nil
	}
	name, err := idna.Lookup.ToASCII(strings.TrimSuffix(host, "."))
	if err != nil || name == "" || len(name) > 253 {
		return "", ErrHost
	}
	return name, nil
}

// NoICMP is Result.Note for an ICMP ping that ran over TCP.
const NoICMP = "ICMP is not available to this server, so these are TCP connects instead"

// Ping sends count (1 to MaxCount) echo requests to host.
func (p *Pinger) Ping(ctx context.Context, host string, count int) (Result, error) {
	return p.Run(ctx, Request{Host: host, Count: count}, nil)
}

// Run pings as req says, calling reply (if not nil) with each request's
// outcome as it comes, before the next request is sent. The Result is
// set up (host, address, protocol) before the first call.
func (p *Pinger) Run(ctx context.Context, req Request, reply func(*Result, Reply)) (Result, error) {
	host, err := CheckHost(req.Host)
	if err != nil {
		return Result{}, err
	}
	if req.Port < 0 || req.Port > 65535 {
		return Result{}, ErrPort
	}
	count := min(max(req.Count, 1), MaxCount)
	dst, err := p.destination(ctx, host)
	if err != nil {
		return Result{}, err
	}
	res := Result{Host: host, Address: dst.String(), Proto: ICMP}
	interval, timeout := orDefault(p.Interval, time.Second), orDefault(p.Timeout, 2*time.Second)
	var once func(ctx context.Context, seq int) (Reply, error)
	if req.Proto == TCP {
		once = p.tcp(&res, dst, req.Port, timeout)
	} else {
		open := p.listen
		if open == nil {
			open = listen
		}
		conn, raw, err := open(dst.Is6())
		switch {
		case errors.Is(err, ErrUnavailable):
			res.Note = NoICMP
			once = p.tcp(&res, dst, req.Port, timeout)
		case err != nil:
			return res, err
		default:
			defer conn.Close()
			var id [2]byte
			rand.Read(id[:])
			e := echo{conn: conn, raw: raw, dst: dst, id: int(binary.BigEndian.Uint16(id[:]))}
			once = func(ctx context.Context, seq int) (Reply, error) {
				rtt, err := e.once(ctx, seq, timeout)
				return Reply{Seq: seq, RTT: ms(rtt)}, err
			}
		}
	}
	for seq := 1; seq <= count; seq++ {
		start := time.Now()
		rep, err := once(ctx, seq)
		if err != nil {
			return res, err
		}
		res.add(rep)
		if reply != nil {
			reply(&res, rep)
		}
		if seq < count {
			select {
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(time.Until(start.Add(interval))):
			}
		}
	}
	return res, nil
}

// add counts one request's outcome.
func (res *Result) add(rep Reply) {
	res.Sent++
	res.RTTs = append(res.RTTs, rep.RTT)
	if rep.RTT < 0 {
		return
	}
	res.Received++
	if res.Received == 1 || rep.RTT < res.Min {
		res.Min = rep.RTT
	}
	res.Max = max(res.Max, rep.RTT)
	res.Avg += (rep.RTT - res.Avg) / float64(res.Received)
}

// tcp sets res up for a TCP ping of dst and returns the function that
// times one connect: the handshake's round trip. A refused connect is a
// lost request, with its status, as tcping counts it.
func (p *Pinger) tcp(res *Result, dst netip.Addr, port int, timeout time.Duration) func(context.Context, int) (Reply, error) {
	if port == 0 {
		port = DefaultPort
	}
	res.Proto, res.Port = TCP, port
	d := p.Guard.Dialer(&net.Dialer{Timeout: timeout})
	addr := netip.AddrPortFrom(dst, uint16(port)).String()
	return func(ctx context.Context, seq int) (Reply, error) {
		start := time.Now()
		conn, err := d.DialContext(ctx, "tcp", addr)
		rtt := time.Since(start)
		switch {
		case err == nil:
			conn.Close()
			return Reply{Seq: seq, RTT: ms(rtt)}, nil
		case ctx.Err() != nil:
			return Reply{}, ctx.Err()
		case errors.Is(err, syscall.ECONNREFUSED):
			return Reply{Seq: seq, RTT: -1, Status: "refused"}, nil
		case errors.Is(err, netguard.ErrDenied):
			return Reply{}, err
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return Reply{Seq: seq, RTT: -1, Status: "timeout"}, nil
		}
		return Reply{Seq: seq, RTT: -1, Status: "unreachable"}, nil
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// ms is d in milliseconds to 0.01, or -1 for a negative d (no reply).
func ms(d time.Duration) float64 {
	if d < 0 {
		return -1
	}
	return float64(d.Microseconds()/10) / 100
}

// destination resolves host and returns its first address the guard
// permits.
func (p *Pinger) destination(ctx context.Context, host string) (netip.Addr, error) {
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		resolve := p.Resolve
		if resolve == nil {
			resolve = func(ctx context.Context, h string) ([]netip.Addr, error) {
				return net.DefaultResolver.LookupNetIP(ctx, "ip", h)
			}
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if ips, err = resolve(ctx, host); err != nil || len(ips) == 0 {
			return netip.Addr{}, i18n.NewError("ping.err.resolve", "Host", host)
		}
	}
	var firstErr error
	for _, ip := range ips {
		ip = ip.Unmap()
		err := p.Guard.Permit(ip)
		if err == nil {
			return ip, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return netip.Addr{}, firstErr
}

// listen opens an ICMP socket: an unprivileged ping socket if the system
// allows one, else a raw socket (root).
func listen(v6 bool) (*icmp.PacketConn, bool, error) {
	dgram, rawNet, unspec := "udp4", "ip4:icmp", "0.0.0.0"
	if v6 {
		dgram, rawNet, unspec = "udp6", "ip6:ipv6-icmp", "::"
	}
	if c, err := icmp.ListenPacket(dgram, unspec); err == nil {
		return c, false, nil
	}
	if c, err := icmp.ListenPacket(rawNet, unspec); err == nil {
		return c, true, nil
	}
	return nil, false, ErrUnavailable
}

// echo is one ping's socket and destination.
type echo struct {
	conn *icmp.PacketConn
	raw  bool // a raw socket sees every echo reply: match the id too
	dst  netip.Addr
	id   int
}

// once sends request seq and waits up to timeout for its reply; the RTT
// is negative when none came.
func (e *echo) once(ctx context.Context, seq int, timeout time.Duration) (time.Duration, error) {
	typ, replyType, proto := icmp.Type(ipv4.ICMPTypeEcho), icmp.Type(ipv4.ICMPTypeEchoReply), 1
	if e.dst.Is6() {
		typ, replyType, proto = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, 58
	}
	msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: e.id, Seq: seq, Data: []byte("veil ping")}}
	b, err := msg.Marshal(nil)
	if err != nil {
		return 0, err
	}
	var to net.Addr = &net.UDPAddr{IP: e.dst.AsSlice()}
	if e.raw {
		to = &net.IPAddr{IP: e.dst.AsSlice()}
	}
	start := time.Now()
	if _, err := e.conn.WriteTo(b, to); err != nil {
		return -1, nil // unreachable from here: counted as lost
	}
	deadline := start.Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	e.conn.SetReadDeadline(deadline)
	buf := make([]byte, 1500)
	for {
		n, from, err := e.conn.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return -1, nil
			}
			return 0, err
		}
		rtt := time.Since(start)
		if src, ok := addrOf(from); !ok || src != e.dst {
			continue
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || m.Type != replyType {
			continue
		}
		if r, ok := m.Body.(*icmp.Echo); ok && r.Seq == seq && (!e.raw || r.ID == e.id) {
			return rtt, nil
		}
	}
}

func addrOf(a net.Addr) (netip.Addr, bool) {
	switch a := a.(type) {
	case *net.UDPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), ok
	case *net.IPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), ok
	}
	return netip.Addr{}, false
}
