package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"veil/internal/wg"
)

// gatewayNode is a WireGuard device on a netstack behind a ServerBind
// serving TLS and QUIC on loopback, installing peers on demand.
type gatewayNode struct {
	dev  *wg.Device
	ns   *wg.Netstack
	bind *ServerBind
	priv wg.Key
	pin  string
	peer netip.Prefix // what the admitted client may use
}

// Admit implements wg.Admitter: every initiator is let in.
func (g *gatewayNode) Admit(k wg.Key) {
	g.dev.SetPeer(wg.Peer{PublicKey: k, AllowedIPs: []netip.Prefix{g.peer}})
}

func newGatewayNode(t testing.TB, cfg ServerConfig) *gatewayNode {
	t.Helper()
	cert, err := SelfSigned("gw.test")
	if err != nil {
		t.Fatal(err)
	}
	pin, _ := CertPin(cert)
	cfg.Certificate = cert
	cfg.TLSAddr, cfg.QUICAddr = "127.0.0.1:0", "127.0.0.1:0"
	b, err := NewServerBind(cfg)
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := wg.GenerateKey()
	ns, err := wg.NewNetstack(wg.NetstackConfig{Addresses: []netip.Addr{netip.MustParseAddr("10.9.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	g := &gatewayNode{ns: ns, bind: b, priv: priv, pin: pin, peer: netip.MustParsePrefix("10.9.0.2/32")}
	g.dev, err = wg.NewDevice(wg.DeviceConfig{TUN: ns, Bind: b, PrivateKey: priv, Admit: g})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.dev.Close)
	return g
}

// info is what the server list would tell a client about g.
func (g *gatewayNode) info() Gateway {
	return Gateway{
		TLSPort:    g.bind.TLSAddr().(*net.TCPAddr).Port,
		QUICPort:   g.bind.QUICAddr().(*net.UDPAddr).Port,
		Pin:        g.pin,
		ServerName: "gw.test",
	}
}

type clientNode struct {
	dev  *wg.Device
	ns   *wg.Netstack
	bind *ClientBind
}

// newClientNode connects over transport tr. Its WireGuard endpoint is a
// UDP port nobody listens on: only the transport can carry the tunnel.
func newClientNode(t testing.TB, g *gatewayNode, tr string) *clientNode {
	t.Helper()
	priv, _ := wg.GenerateKey()
	ns, err := wg.NewNetstack(wg.NetstackConfig{Addresses: []netip.Addr{netip.MustParseAddr("10.9.0.2")}})
	if err != nil {
		t.Fatal(err)
	}
	b := NewClientBind(nil)
	if err := b.Use(tr, g.info()); err != nil {
		t.Fatal(err)
	}
	dev, err := wg.NewDevice(wg.DeviceConfig{TUN: ns, Bind: b, PrivateKey: priv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dev.Close)
	if err := dev.SetPeer(wg.Peer{
		PublicKey:           g.priv.Public(),
		AllowedIPs:          []netip.Prefix{netip.MustParsePrefix("10.9.0.1/32")},
		Endpoint:            netip.MustParseAddrPort("127.0.0.1:9"),
		PersistentKeepalive: 25 * time.Second,
	}); err != nil {
		t.Fatal(err)
	}
	return &clientNode{dev: dev, ns: ns, bind: b}
}

var echoPort uint16 = 7000

// echoThrough sends size random bytes from c to an echo server on the
// gateway's tunnel address and checks that they come back whole.
func echoThrough(t testing.TB, g *gatewayNode, c *clientNode, size int) {
	t.Helper()
	echoPort++
	dst := netip.AddrPortFrom(netip.MustParseAddr("10.9.0.1"), echoPort)
	ln, err := g.ns.ListenTCP(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		s, err := ln.Accept()
		if err != nil {
			return
		}
		defer s.Close()
		io.Copy(s, s)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := c.ns.DialContext(ctx, "tcp", dst.String())
	if err != nil {
		t.Fatalf("dial through the tunnel: %v", err)
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(60 * time.Second))
	want := make([]byte, size)
	rand.Read(want)
	go s.Write(want)
	got := make([]byte, size)
	if _, err := io.ReadFull(s, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("echo of %d bytes: %v (equal %v)", size, err, bytes.Equal(got, want))
	}
}

func TestTunnelOverTransports(t *testing.T) {
	for _, tr := range []string{TLS, QUIC} {
		t.Run(tr, func(t *testing.T) {
			g := newGatewayNode(t, ServerConfig{})
			c := newClientNode(t, g, tr)
			// Full-size segments: over QUIC these exceed a datagram and
			// take the stream.
			echoThrough(t, g, c, 1<<20)
			if got := c.bind.Transport(); got != tr {
				t.Fatalf("Transport() = %q", got)
			}
		})
	}
}

// TestTunnelSwitchTransport moves a live tunnel from TLS to QUIC, as the
// client's fallback does, and from one gateway connection to a new one.
func TestTunnelSwitchTransport(t *testing.T) {
	g := newGatewayNode(t, ServerConfig{})
	c := newClientNode(t, g, TLS)
	echoThrough(t, g, c, 4096)
	if err := c.bind.Use(QUIC, g.info()); err != nil {
		t.Fatal(err)
	}
	echoThrough(t, g, c, 4096)
	if err := c.bind.Use(TLS, Gateway{}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Use without ports = %v, want ErrUnavailable", err)
	}
}

func TestWrongPinRefused(t *testing.T) {
	g := newGatewayNode(t, ServerConfig{})
	other, _ := SelfSigned("gw.test")
	pin, _ := CertPin(other)
	info := g.info()
	info.Pin = pin
	for _, tr := range []string{TLS, QUIC} {
		t.Run(tr, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			port := info.TLSPort
			if tr == QUIC {
				port = info.QUICPort
			}
			_, _, err := dial(ctx, tr, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)), info, 0)
			if err == nil || !strings.Contains(err.Error(), ErrPin.Error()) {
				t.Fatalf("dial with a wrong pin: %v, want the pin refused", err)
			}
		})
	}
}

// pinnedClient is an HTTPS client that trusts g's certificate by its pin.
func pinnedClient(g *gatewayNode, h2 bool) *http.Client {
	alpn := []string{"http/1.1"}
	if h2 {
		alpn = []string{"h2"}
	}
	tr := &http.Transport{TLSClientConfig: clientTLS(g.pin, "gw.test", alpn), ForceAttemptHTTP2: h2}
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

func TestHTTPSGetsPlainPage(t *testing.T) {
	g := newGatewayNode(t, ServerConfig{})
	url := "https://" + g.bind.TLSAddr().String() + "/"
	for _, h2 := range []bool{false, true} {
		c := pinnedClient(g, h2)
		resp, err := c.Get(url)
		if err != nil {
			t.Fatalf("h2=%v: GET: %v", h2, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "Welcome") || resp.ProtoMajor != map[bool]int{false: 1, true: 2}[h2] {
			t.Fatalf("h2=%v: %s %d %q", h2, resp.Proto, resp.StatusCode, body)
		}
		resp, err = c.Get(url + "admin")
		if err != nil || resp.StatusCode != 404 {
			t.Fatalf("h2=%v: GET /admin: %v %v", h2, err, resp)
		}
		resp.Body.Close()
		c.CloseIdleConnections()
	}
}

// tlsDial opens a raw TLS connection to g's TLS port.
func tlsDial(t testing.TB, g *gatewayNode) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", g.bind.TLSAddr().String(), clientTLS(g.pin, "gw.test", []string{"http/1.1"}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

// closedByServer reports whether the server ends c (EOF or reset) before
// the test's own deadline.
func closedByServer(c net.Conn) (bool, []byte) {
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false, b
	}
	return true, b
}

func TestTLSBadInput(t *testing.T) {
	g := newGatewayNode(t, ServerConfig{FirstBytes: 300 * time.Millisecond})
	t.Run("garbage gets an HTTP error", func(t *testing.T) {
		c := tlsDial(t, g)
		c.Write(append(bytes.Repeat([]byte{0xfe}, 64), "\r\n\r\n"...))
		closed, b := closedByServer(c)
		if !closed || !strings.HasPrefix(string(b), "HTTP/1.1 400") {
			t.Fatalf("closed=%v, answer %q", closed, b)
		}
	})
	t.Run("oversized frame after a good one", func(t *testing.T) {
		c := tlsDial(t, g)
		c.Write(append(appendFrame(nil, wgMsg(1, 148)), 0xff, 0xff, 4, 0, 0, 0))
		if closed, b := closedByServer(c); !closed || len(b) != 0 {
			t.Fatalf("closed=%v, answer %q", closed, b)
		}
	})
	t.Run("early close inside a frame", func(t *testing.T) {
		c := tlsDial(t, g)
		c.Write(appendFrame(nil, wgMsg(1, 148))[:100])
		c.CloseWrite()
		if closed, b := closedByServer(c); !closed || len(b) != 0 {
			t.Fatalf("closed=%v, answer %q", closed, b)
		}
	})
	t.Run("silent after TLS (slowloris)", func(t *testing.T) {
		c := tlsDial(t, g)
		if closed, _ := closedByServer(c); !closed {
			t.Fatal("a silent connection stayed open")
		}
	})
	t.Run("silent before TLS", func(t *testing.T) {
		c, err := net.Dial("tcp", g.bind.TLSAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		if closed, _ := closedByServer(c); !closed {
			t.Fatal("a connection without a TLS handshake stayed open")
		}
	})
	t.Run("plain HTTP on the TLS port", func(t *testing.T) {
		c, err := net.Dial("tcp", g.bind.TLSAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		if closed, _ := closedByServer(c); !closed {
			t.Fatal("stayed open")
		}
	})
}

func TestMaxConnsBounded(t *testing.T) {
	g := newGatewayNode(t, ServerConfig{MaxConns: 2, FirstBytes: 20 * time.Second})
	for range 2 {
		tlsDial(t, g) // held open, silent
	}
	c, err := net.Dial("tcp", g.bind.TLSAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if closed, _ := closedByServer(c); !closed {
		t.Fatal("a connection over MaxConns was kept")
	}
}
