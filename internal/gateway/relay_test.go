package gateway

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"

	"veil/internal/relay"
	"veil/internal/wg"
)

func udpLoopback(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func sockAddr(c *net.UDPConn) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

func readFrom(t *testing.T, c *net.UDPConn) ([]byte, netip.AddrPort, bool) {
	t.Helper()
	buf := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		return nil, netip.AddrPort{}, false
	}
	return buf[:n], netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), true
}

// TestRelays opens a relay as a client would and checks what the entry
// answers and forwards, and what it refuses.
func TestRelays(t *testing.T) {
	entryKey, _ := wg.GenerateKey()
	dev, _ := wg.GenerateKey()
	free, _ := wg.GenerateKey()
	stranger, _ := wg.GenerateKey()
	clientSock, exitSock, otherSock := udpLoopback(t), udpLoopback(t), udpLoopback(t)
	exit := sockAddr(exitSock)

	auth := map[wg.Key]relayAuth{dev.Public(): relayOK, free.Public(): relayFree}
	r := newRelays()
	r.priv = func() wg.Key { return entryKey }
	r.auth = func(k wg.Key) relayAuth { return auth[k] }
	r.exits = func(context.Context) (map[netip.AddrPort]bool, error) {
		return map[netip.AddrPort]bool{exit: true}, nil
	}
	var replies [][]byte
	r.send = func(msg []byte, _ conn.Endpoint) error { replies = append(replies, msg); return nil }
	t.Cleanup(r.close)
	ep, err := conn.NewStdNetBind().ParseEndpoint(sockAddr(clientSock).String())
	if err != nil {
		t.Fatal(err)
	}
	open := func(k wg.Key, to netip.AddrPort, at time.Time) (relay.Reply, bool) {
		t.Helper()
		key, _ := relay.Key(k, entryKey.Public(), k.Public())
		replies = nil
		r.handle(context.Background(), pendingOpen{msg: relay.Open{Client: k.Public(), Time: at, Exit: to}.Marshal(key), ep: ep})
		if len(replies) == 0 {
			return relay.Reply{}, false
		}
		rep, err := relay.ParseReply(replies[0], key)
		if err != nil {
			t.Fatal(err)
		}
		return rep, true
	}

	now := time.Now()
	rep, ok := open(dev, exit, now)
	if !ok || rep.Status != relay.OK || rep.Port == 0 || !rep.Time.Equal(now) {
		t.Fatalf("open = %+v, %v; want a port", rep, ok)
	}
	port := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), rep.Port)

	t.Run("forwards both ways, from its own port", func(t *testing.T) {
		clientSock.WriteToUDPAddrPort([]byte("to exit"), port)
		b, from, ok := readFrom(t, exitSock)
		if !ok || string(b) != "to exit" || from.Port() != rep.Port {
			t.Fatalf("exit got %q from %v, %v; want it from the relay port %d", b, from, ok, rep.Port)
		}
		exitSock.WriteToUDPAddrPort([]byte("to client"), port)
		b, from, ok = readFrom(t, clientSock)
		if !ok || string(b) != "to client" || from != port {
			t.Fatalf("client got %q from %v, %v", b, from, ok)
		}
	})
	t.Run("drops what a stranger sends", func(t *testing.T) {
		otherSock.WriteToUDPAddrPort([]byte("junk"), port)
		if b, _, ok := readFrom(t, exitSock); ok {
			t.Fatalf("a stranger's datagram reached the exit: %q", b)
		}
	})
	t.Run("refuses", func(t *testing.T) {
		if _, ok := open(dev, exit, now); ok {
			t.Error("a replayed open was answered")
		}
		if _, ok := open(stranger, exit, time.Now()); ok {
			t.Error("a device the peer map does not hold was answered")
		}
		if rep, _ := open(free, exit, time.Now()); rep.Status != relay.NotAllowed {
			t.Errorf("free device: status %d, want NotAllowed", rep.Status)
		}
		if rep, _ := open(dev, netip.MustParseAddrPort("127.0.0.1:9"), time.Now()); rep.Status != relay.UnknownExit {
			t.Errorf("an exit that is no gateway: status %d, want UnknownExit", rep.Status)
		}
		if _, ok := open(dev, exit, time.Now().Add(-10*time.Minute)); ok {
			t.Error("an open from long ago was answered")
		}
	})
	t.Run("revoked device loses its relay", func(t *testing.T) {
		rep, ok := open(dev, exit, time.Now())
		if !ok || rep.Status != relay.OK {
			t.Fatalf("open = %+v, %v", rep, ok)
		}
		if rep.Port != port.Port() {
			t.Errorf("a second open to the same exit moved the relay: port %d, was %d", rep.Port, port.Port())
		}
		delete(auth, dev.Public())
		r.sweep()
		if r.count() != 0 {
			t.Fatal("the relay of a device the peer map dropped is still held")
		}
		clientSock.WriteToUDPAddrPort([]byte("after"), port)
		if b, _, ok := readFrom(t, exitSock); ok {
			t.Fatalf("a closed relay forwarded %q", b)
		}
	})
}
