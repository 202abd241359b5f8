// Package ping is the site's ping tool: ICMP echo requests from the
// server to a host the visitor names, to the first of its addresses that
// the egress guard permits. Nothing is kept: not the host, not the
// times, not who asked.
package ping

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/idna"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

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
}

// MaxCount bounds the requests of one ping.
const MaxCount = 5

// Result is what a ping found. RTTs holds one entry per request sent, in
// milliseconds, -1 for a request that got no reply.
type Result struct {
	Host     string    `json:"host"`
	Address  string    `json:"address"`
	Sent     int       `json:"sent"`
	Received int       `json:"received"`
	RTTs     []float64 `json:"rtt_ms"`
	Min      float64   `json:"min_ms"`
	Avg      float64   `json:"avg_ms"`
	Max      float64   `json:"max_ms"`
}

// Errors a caller tells apart.
var (
	ErrHost        = errors.New("give a host name or an IP address")
	ErrUnavailable = errors.New("ICMP is not available to this server (it needs root, or net.ipv4.ping_group_range covering its group)")
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

// Ping sends count (1 to MaxCount) echo requests to host.
func (p *Pinger) Ping(ctx context.Context, host string, count int) (Result, error) {
	host, err := CheckHost(host)
	if err != nil {
		return Result{}, err
	}
	count = min(max(count, 1), MaxCount)
	dst, err := p.destination(ctx, host)
	if err != nil {
		return Result{}, err
	}
	res := Result{Host: host, Address: dst.String()}
	conn, raw, err := listen(dst.Is6())
	if err != nil {
		return res, err
	}
	defer conn.Close()
	interval, timeout := orDefault(p.Interval, time.Second), orDefault(p.Timeout, 2*time.Second)
	var id [2]byte
	rand.Read(id[:])
	e := echo{conn: conn, raw: raw, dst: dst, id: int(binary.BigEndian.Uint16(id[:]))}
	for seq := 1; seq <= count; seq++ {
		start := time.Now()
		rtt, err := e.once(ctx, seq, timeout)
		if err != nil {
			return res, err
		}
		res.Sent++
		res.RTTs = append(res.RTTs, ms(rtt))
		if rtt >= 0 {
			res.Received++
			r := ms(rtt)
			if res.Received == 1 || r < res.Min {
				res.Min = r
			}
			res.Max = max(res.Max, r)
			res.Avg += (r - res.Avg) / float64(res.Received)
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
			return netip.Addr{}, fmt.Errorf("%s does not resolve", host)
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
