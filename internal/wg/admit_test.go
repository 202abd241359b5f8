package wg

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// relay carries UDP between one client and a device on loopback and
// counts the client's handshake initiations.
type relay struct {
	conn        *net.UDPConn
	initiations atomic.Int32
	responses   atomic.Int32
}

func newRelay(t testing.TB, serverPort int) *relay {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &relay{conn: c}
	server := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(serverPort))
	go func() {
		var client netip.AddrPort
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if from == server {
				if _, ok := ResponseReceiver(buf[:n]); ok {
					r.responses.Add(1)
				}
				if client.IsValid() {
					c.WriteToUDPAddrPort(buf[:n], client)
				}
				continue
			}
			client = from
			if IsInitiation(buf[:n]) {
				r.initiations.Add(1)
			}
			c.WriteToUDPAddrPort(buf[:n], server)
		}
	}()
	return r
}

func (r *relay) endpoint() netip.AddrPort { return r.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// admitter admits the keys it allows, with one address each.
type admitter struct {
	dev     *Device
	mu      sync.Mutex
	allow   map[Key]netip.Prefix
	called  map[Key]int
	calledC chan Key
}

func (a *admitter) Admit(k Key) {
	a.mu.Lock()
	a.called[k]++
	pfx, ok := a.allow[k]
	a.mu.Unlock()
	if ok {
		if err := a.dev.SetPeer(Peer{PublicKey: k, AllowedIPs: []netip.Prefix{pfx}}); err != nil {
			panic(err)
		}
	}
	select {
	case a.calledC <- k:
	default:
	}
}

func (a *admitter) calls(k Key) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.called[k]
}

// newOnDemandNode is a node whose peers are admitted on demand.
func newOnDemandNode(t testing.TB, addr string) (*node, *admitter) {
	t.Helper()
	adm := &admitter{allow: map[Key]netip.Prefix{}, called: map[Key]int{}, calledC: make(chan Key, 16)}
	n := newNodeAdmit(t, addr, adm)
	adm.dev = n.dev
	return n, adm
}

// TestResponderOpensWireGuardGo checks the check against the real thing:
// the initiation a wireguard-go device sends opens to its key, and only
// with the responder's key.
func TestResponderOpensWireGuardGo(t *testing.T) {
	server, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	sock, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	client := newNode(t, "10.9.0.2")
	if err := client.dev.SetPeer(Peer{
		PublicKey:           server.Public(),
		AllowedIPs:          []netip.Prefix{netip.MustParsePrefix("10.9.0.1/32")},
		Endpoint:            sock.LocalAddr().(*net.UDPAddr).AddrPort(),
		PersistentKeepalive: time.Second, // starts a handshake at once
	}); err != nil {
		t.Fatal(err)
	}
	sock.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 2048)
	n, _, err := sock.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("no initiation from wireguard-go: %v", err)
	}
	msg := buf[:n]
	if !IsInitiation(msg) {
		t.Fatalf("first packet is not an initiation: %d bytes, type %d", n, msg[0])
	}
	got, ok := NewResponder(server).Initiator(msg)
	if !ok || got != client.priv.Public() {
		t.Fatalf("Initiator() = %v, %v; want the client's key", got == client.priv.Public(), ok)
	}

	other, _ := GenerateKey()
	if NewResponder(other).CheckMAC1(msg) {
		t.Error("mac1 holds for another responder's key")
	}
	// A static key tampered with, under a valid mac1, must not open.
	bad := append([]byte(nil), msg...)
	bad[offStatic] ^= 1
	r := NewResponder(server)
	m := mac(r.mac1Key[:], bad[:offMAC1])
	copy(bad[offMAC1:], m[:])
	if !r.CheckMAC1(bad) {
		t.Fatal("test broke mac1")
	}
	if _, ok := r.Initiator(bad); ok {
		t.Error("a tampered static key opened")
	}
	if _, ok := r.Initiator(msg[:100]); ok {
		t.Error("a short message opened")
	}
}

// TestInitiationAnswered checks Initiation against wireguard-go: a device
// that holds the key answers with a response for the sender index.
func TestInitiationAnswered(t *testing.T) {
	server := newNode(t, "10.9.0.1")
	client, _ := GenerateKey()
	if err := server.dev.SetPeer(Peer{PublicKey: client.Public(), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.9.0.2/32")}}); err != nil {
		t.Fatal(err)
	}
	port, _ := server.dev.Port()
	sock, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	msg, err := Initiation(client, server.priv.Public(), 0x1234, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := NewResponder(server.priv).Initiator(msg); !ok || got != client.Public() {
		t.Fatal("own initiation does not open")
	}
	sock.Write(msg)
	sock.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 2048)
	n, err := sock.Read(buf)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	if recv, ok := ResponseReceiver(buf[:n]); !ok || recv != 0x1234 {
		t.Fatalf("answer = %d bytes, receiver %d, ok %v", n, recv, ok)
	}
}

// TestAdmitOnDemand: a peer the device does not hold is admitted by its
// first initiation, which then completes the handshake without a retry;
// an unknown key costs the check and gets no answer.
func TestAdmitOnDemand(t *testing.T) {
	server, adm := newOnDemandNode(t, "10.9.0.1")
	port, _ := server.dev.Port()
	client := newNode(t, "10.9.0.2")
	adm.allow[client.priv.Public()] = netip.MustParsePrefix("10.9.0.2/32")
	rl := newRelay(t, port)
	if err := client.dev.SetPeer(Peer{
		PublicKey:  server.priv.Public(),
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.9.0.1/32")},
		Endpoint:   rl.endpoint(),
	}); err != nil {
		t.Fatal(err)
	}
	if st, _ := server.dev.Stats(); st.Peers != 0 {
		t.Fatalf("server holds %d peers before any handshake", st.Peers)
	}

	echoThrough(t, server, client)
	buf := make([]byte, 64)
	if n := rl.initiations.Load(); n != 1 {
		t.Errorf("client sent %d initiations; the first should have succeeded", n)
	}
	if n := adm.calls(client.priv.Public()); n != 1 {
		t.Errorf("Admit called %d times for the client", n)
	}

	// An unknown key: the check opens it and asks; nothing answers.
	stranger, _ := GenerateKey()
	sock, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	msg, _ := Initiation(stranger, server.priv.Public(), 7, time.Now())
	sock.Write(msg)
	select {
	case k := <-adm.calledC:
		for k != stranger.Public() {
			k = <-adm.calledC
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Admit never asked about the unknown key")
	}
	sock.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if n, err := sock.Read(buf); err == nil {
		t.Errorf("an unknown key got %d bytes back", n)
	}
	// A bad mac1 never reaches the Admitter: the valid initiation sent
	// after it is the next one asked about.
	wrong, _ := GenerateKey()
	late, _ := GenerateKey()
	msg, _ = Initiation(wrong, stranger.Public(), 8, time.Now())
	sock.Write(msg)
	msg, _ = Initiation(late, server.priv.Public(), 9, time.Now())
	sock.Write(msg)
	select {
	case k := <-adm.calledC:
		if k != late.Public() {
			t.Error("Admit asked about an initiation whose mac1 is wrong")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Admit never asked about the second unknown key")
	}
	if st, _ := server.dev.Stats(); st.Peers != 1 {
		t.Errorf("server holds %d peers, want only the admitted client", st.Peers)
	}
}
