package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fakeUpstream is a UDP server on 127.0.0.1 whose handler writes whatever
// datagrams it likes, from its own socket or others.
func fakeUpstream(tb testing.TB, handle func(pc net.PacketConn, from net.Addr, req *dns.Msg)) netip.AddrPort {
	tb.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, dns.MaxMsgSize)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			req := new(dns.Msg)
			if req.Unpack(buf[:n]) == nil {
				handle(pc, from, req)
			}
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// answerA is the reply to req with one A record.
func answerA(req *dns.Msg, ip string) []byte {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Answer = []dns.RR{mustRR(req.Question[0].Name + " 300 IN A " + ip)}
	b, err := resp.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

// send writes b to to. A socket closed meanwhile is the test having ended
// (a case that expects an error returns at the first datagram, while the
// handler may still be writing the next).
func send(pc net.PacketConn, to net.Addr, b []byte) {
	if _, err := pc.WriteTo(b, to); err != nil && !errors.Is(err, net.ErrClosed) {
		panic(err)
	}
}

// poolExchange sends one random-case query for name through p.
func poolExchange(tb testing.TB, p *udpPool, server netip.AddrPort, name string) (*dns.Msg, error) {
	tb.Helper()
	s, err := p.acquire()
	if err != nil {
		tb.Fatalf("acquire: %v", err)
	}
	// Only a guard against hanging forever: every case here ends by a reply.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s.exchange(ctx, server, newQuery(randomCase(name), dns.TypeA, false))
}

// TestPoolDemultiplex sends a spoofed answer before the real one: from
// another port, from another address, with another ID, with the case
// pattern lost. The query gets the real answer or, when the server itself
// breaks 0x20, a mismatch error; never the spoofed address.
func TestPoolDemultiplex(t *testing.T) {
	spoofer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer spoofer.Close()
	otherAddr, err := net.ListenPacket("udp4", "127.0.0.9:0")
	if err != nil {
		t.Fatal(err)
	}
	defer otherAddr.Close()
	tests := []struct {
		name    string
		spoof   func(pc net.PacketConn, from net.Addr, req *dns.Msg)
		wantErr error
	}{
		{"from another port", func(pc net.PacketConn, from net.Addr, req *dns.Msg) {
			send(spoofer, from, answerA(req, "6.6.6.6"))
		}, nil},
		{"from another address", func(pc net.PacketConn, from net.Addr, req *dns.Msg) {
			send(otherAddr, from, answerA(req, "6.6.6.6"))
		}, nil},
		{"with another ID", func(pc net.PacketConn, from net.Addr, req *dns.Msg) {
			bad := req.Copy()
			bad.Id++
			send(pc, from, answerA(bad, "6.6.6.6"))
		}, nil},
		{"not a DNS message", func(pc net.PacketConn, from net.Addr, req *dns.Msg) {
			b, _ := req.Pack()
			send(pc, from, b[:14]) // right ID, cut short
		}, nil},
		{"with the case pattern lost", func(pc net.PacketConn, from net.Addr, req *dns.Msg) {
			bad := req.Copy()
			bad.Question[0].Name = strings.ToLower(bad.Question[0].Name)
			send(pc, from, answerA(bad, "6.6.6.6"))
		}, errMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server := fakeUpstream(t, func(pc net.PacketConn, from net.Addr, req *dns.Msg) {
				tt.spoof(pc, from, req)
				send(pc, from, answerA(req, "192.0.2.1"))
			})
			p := newUDPPool("udp4")
			resp, err := poolExchange(t, p, server, "www.example.test.")
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			if got := answerData(resp); !slices.Equal(got, []string{"192.0.2.1"}) {
				t.Errorf("answer = %v, want the real one", got)
			}
		})
	}
}

// TestPoolConcurrent has many queries outstanding on few sockets and
// answers them in reverse order: each gets its own answer.
func TestPoolConcurrent(t *testing.T) {
	const n = 64
	var mu sync.Mutex
	type held struct {
		from net.Addr
		req  *dns.Msg
	}
	var queue []held
	server := fakeUpstream(t, func(pc net.PacketConn, from net.Addr, req *dns.Msg) {
		mu.Lock()
		defer mu.Unlock()
		queue = append(queue, held{from, req})
		if len(queue) < n {
			return
		}
		for i := len(queue) - 1; i >= 0; i-- {
			q := queue[i]
			var idx int
			fmt.Sscanf(strings.ToLower(q.req.Question[0].Name), "q%d.", &idx)
			send(pc, q.from, answerA(q.req, fmt.Sprintf("192.0.2.%d", idx)))
		}
	})
	p := newUDPPool("udp4")
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			resp, err := poolExchange(t, p, server, fmt.Sprintf("q%d.example.test.", i))
			if err != nil {
				t.Errorf("query %d: %v", i, err)
				return
			}
			if got, want := answerData(resp), []string{fmt.Sprintf("192.0.2.%d", i)}; !slices.Equal(got, want) {
				t.Errorf("query %d: answer = %v, want %v", i, got, want)
			}
		})
	}
	wg.Wait()
}

// TestPoolReuseAndRetire checks that sockets are reused, each on its own
// port, and closed once they have served maxUses queries.
func TestPoolReuseAndRetire(t *testing.T) {
	server := fakeUpstream(t, func(pc net.PacketConn, from net.Addr, req *dns.Msg) {
		send(pc, from, answerA(req, "192.0.2.1"))
	})
	p := newUDPPool("udp4")
	p.maxUses = 3
	var opened []*net.UDPConn
	var listens atomic.Int32
	p.listen = func() (*net.UDPConn, error) {
		listens.Add(1)
		c, err := p.listenRandomPort()
		if err == nil {
			opened = append(opened, c) // under p.mu
		}
		return c, err
	}
	const queries = 4 * poolSockets
	for range queries {
		if _, err := poolExchange(t, p, server, "www.example.test."); err != nil {
			t.Fatal(err)
		}
	}
	if n := int(listens.Load()); n >= queries || n < queries/3 {
		t.Errorf("%d sockets opened for %d queries with %d uses each", n, queries, p.maxUses)
	}
	ports := map[int]bool{}
	closed := 0
	for _, c := range opened {
		ports[c.LocalAddr().(*net.UDPAddr).Port] = true
		if _, err := c.WriteToUDPAddrPort([]byte{0}, server); errors.Is(err, net.ErrClosed) {
			closed++
		}
	}
	if len(ports) < len(opened)*9/10 {
		t.Errorf("%d distinct ports for %d sockets", len(ports), len(opened))
	}
	// Every socket that reached maxUses was retired and closed.
	open := 0
	for _, s := range p.slots {
		if s != nil {
			open++
		}
	}
	if closed+open != len(opened) || closed == 0 {
		t.Errorf("%d sockets opened, %d closed, %d still in the pool", len(opened), closed, open)
	}
}
