package resolver

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestServePacket runs ServePacket on a loopback socket: a miss (answered
// from a goroutine), then hits (answered inline), and no reply to a source
// that is not allowed, to a response, or to a packet that does not parse;
// on a *net.UDPConn (netip addresses) and on another net.PacketConn (a
// gateway's netstack: net.Addr).
func TestServePacket(t *testing.T) {
	t.Run("UDPConn", func(t *testing.T) { testServePacket(t, false) })
	t.Run("PacketConn", func(t *testing.T) { testServePacket(t, true) })
}

// otherConn hides that its PacketConn is a *net.UDPConn.
type otherConn struct{ net.PacketConn }

func testServePacket(t *testing.T, wrap bool) {
	h := newHierarchy(t)
	allowed := netip.MustParseAddr("127.0.0.1")
	r := newTestResolver(t, h, Config{Allow: func(a netip.Addr) bool { return a == allowed }})
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	served := pc
	if wrap {
		served = otherConn{pc}
	}
	go func() { done <- r.ServePacket(ctx, served) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServePacket: %v", err)
		}
		pc.Close()
	})
	server := pc.LocalAddr()
	client := dialFrom(t, "127.0.0.1")
	other := dialFrom(t, "127.0.0.250")

	ask := func(c net.PacketConn, m *dns.Msg) {
		t.Helper()
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.WriteTo(b, server); err != nil {
			t.Fatal(err)
		}
	}
	read := func(c net.PacketConn) *dns.Msg { t.Helper(); return readReply(t, c) }
	for i, name := range []string{"alias.example.test.", "alias.example.test.", "ALIAS.example.TEST."} {
		q := query(name, dns.TypeA)
		ask(client, q)
		m := read(client)
		if m.Id != q.Id || m.Question[0].Name != name {
			t.Errorf("query %d: reply id %d question %q, want %d %q", i, m.Id, m.Question[0].Name, q.Id, name)
		}
		if got := answerData(m); !slices.Equal(got, []string{"cname:www.hoster.alt.", "192.0.2.2"}) {
			t.Errorf("query %d: answer = %v", i, got)
		}
	}
	// What must get no reply is sent first; the cache hit after it is
	// answered inline by the same reading goroutine, so once its reply is
	// in, the earlier datagrams have been handled.
	ask(other, query("alias.example.test.", dns.TypeA))
	resp := query("alias.example.test.", dns.TypeA)
	resp.Response = true
	ask(client, resp)
	garbage, _ := query("alias.example.test.", dns.TypeA).Pack()
	if _, err := client.WriteTo(garbage[:len(garbage)-3], server); err != nil {
		t.Fatal(err)
	}
	last := query("alias.example.test.", dns.TypeA)
	ask(client, last)
	if m := read(client); m.Id != last.Id {
		t.Errorf("first reply has id %d, want %d (the only query that deserves one)", m.Id, last.Id)
	}
	other.SetReadDeadline(time.Now()) // whatever is queued is there already
	_, _, err = other.ReadFrom(make([]byte, 512))
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Errorf("source not allowed: read err = %v, want nothing queued", err)
	}
}

// readReply returns the next reply to c (the deadline is a guard against
// hanging only).
func readReply(t *testing.T, c net.PacketConn) *dns.Msg {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, dns.MaxMsgSize)
	n, _, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatalf("reading reply: %v", err)
	}
	m := new(dns.Msg)
	if err := m.Unpack(buf[:n]); err != nil {
		t.Fatalf("unpacking reply: %v", err)
	}
	return m
}

// dialFrom opens a UDP socket on ip, port chosen by the kernel.
func dialFrom(tb testing.TB, ip string) net.PacketConn {
	tb.Helper()
	c, err := net.ListenPacket("udp4", net.JoinHostPort(ip, "0"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}
