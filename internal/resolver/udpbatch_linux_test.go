package resolver

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestServePacketBatch sends a burst of cache hits faster than one
// datagram per read, so that reads take several at once: every query gets
// its own reply, and a datagram too long for a batch's buffer gets none;
// over IPv4 and IPv6 sockets (sockaddr_in and sockaddr_in6 addresses).
func TestServePacketBatch(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			host := map[string]string{"udp4": "127.0.0.1", "udp6": "::1"}[network]
			pc, err := net.ListenPacket(network, net.JoinHostPort(host, "0"))
			if err != nil {
				t.Skipf("no %s loopback: %v", network, err)
			}
			defer pc.Close()
			r := newTestResolver(t, newHierarchy(t), Config{Allow: func(netip.Addr) bool { return true }})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.ServePacket(ctx, pc) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("ServePacket: %v", err)
				}
			}()
			client, err := net.ListenPacket(network, net.JoinHostPort(host, "0"))
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			exchange := func(m *dns.Msg) {
				t.Helper()
				b, _ := m.Pack()
				if _, err := client.WriteTo(b, pc.LocalAddr()); err != nil {
					t.Fatal(err)
				}
			}
			next := func() *dns.Msg { t.Helper(); return readReply(t, client) }
			exchange(query("alias.example.test.", dns.TypeA)) // the miss that fills the cache
			next()

			// Too long: a query followed by padding to batchBuf bytes.
			long, _ := query("alias.example.test.", dns.TypeA).Pack()
			long = append(long, make([]byte, batchBuf-len(long))...)
			if _, err := client.WriteTo(long, pc.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			const burst = 200
			want := make(map[uint16]bool)
			for i := range burst {
				q := query("alias.example.test.", dns.TypeA)
				q.Id = uint16(i + 1) // distinct, unlike random ids
				want[q.Id] = true
				exchange(q)
			}
			for range len(want) {
				m := next()
				if !want[m.Id] {
					t.Fatalf("reply id %d: not a query of the burst, or a second reply", m.Id)
				}
				delete(want, m.Id)
				if got := answerData(m); !slices.Equal(got, []string{"cname:www.hoster.alt.", "192.0.2.2"}) {
					t.Fatalf("reply %d: answer = %v", m.Id, got)
				}
			}
			client.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if _, _, err := client.ReadFrom(make([]byte, 512)); err == nil {
				t.Error("a reply beyond the burst's: the over-long datagram was answered")
			}
		})
	}
}

// TestServePacketHitAllocs sends cache hits one by one over a connected
// socket (whose reads and writes allocate nothing) and counts the
// process's heap allocations: a hit answered from a batch must cost none.
// golang.org/x/net's ReadBatch, used before, allocated an address for
// every datagram, which under load meant a garbage collection every few
// seconds.
func TestServePacketHitAllocs(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	r := newTestResolver(t, newHierarchy(t), Config{RateLimit: -1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.ServePacket(ctx, pc) }()
	defer func() {
		cancel()
		<-done
	}()
	c, err := net.DialUDP("udp4", nil, pc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q, _ := query("www.example.test.", dns.TypeA).Pack()
	reply := make([]byte, 512)
	ask := func() {
		t.Helper()
		if _, err := c.Write(q); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(reply); err != nil {
			t.Fatal(err)
		}
	}
	for range 10 { // the miss that fills the cache, and warm buffers
		ask()
	}
	const hits = 1000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range hits {
		ask()
	}
	runtime.ReadMemStats(&after)
	// A little slack for the test's own and the runtime's background
	// allocations; one per datagram would be a thousand.
	if n := after.Mallocs - before.Mallocs; n > hits/10 {
		t.Errorf("%d heap allocations for %d cache hits", n, hits)
	}
}
