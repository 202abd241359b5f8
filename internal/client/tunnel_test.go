package client

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/proxy"

	"veil/internal/apitypes"
	"veil/internal/transport"
	"veil/internal/wg"
)

// fakeGateway is a WireGuard peer on a netstack that serves HTTP and DNS
// on its own tunnel addresses: enough to prove the client's proxies carry
// connections and name lookups through the tunnel, and nothing else.
type fakeGateway struct {
	dev    *wg.Device
	ns     *wg.Netstack
	priv   wg.Key
	port   int
	server apitypes.Server
}

const (
	gw4 = "10.64.0.1"
	gw6 = "fd7a:7665:696c::1"
)

func newFakeGateway(t testing.TB) *fakeGateway {
	t.Helper()
	return newFakeGatewayOn(t, false, false)
}

// newFakeGatewayOn is newFakeGateway that also takes WireGuard over TLS
// and QUIC on loopback, as the server list says.
func newFakeGatewayOn(t testing.TB, withTLS, withQUIC bool) *fakeGateway {
	t.Helper()
	priv, err := wg.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	ns, err := wg.NewNetstack(wg.NetstackConfig{Addresses: []netip.Addr{netip.MustParseAddr(gw4), netip.MustParseAddr(gw6)}})
	if err != nil {
		t.Fatal(err)
	}
	var bind *transport.ServerBind
	var pin string
	if withTLS || withQUIC {
		cert, err := transport.SelfSigned("")
		if err != nil {
			t.Fatal(err)
		}
		pin, _ = transport.CertPin(cert)
		sc := transport.ServerConfig{Certificate: cert}
		if withTLS {
			sc.TLSAddr = "127.0.0.1:0"
		}
		if withQUIC {
			sc.QUICAddr = "127.0.0.1:0"
		}
		if bind, err = transport.NewServerBind(sc); err != nil {
			t.Fatal(err)
		}
	}
	dc := wg.DeviceConfig{TUN: ns, PrivateKey: priv}
	if bind != nil {
		dc.Bind = bind
	}
	dev, err := wg.NewDevice(dc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dev.Close)
	port, err := dev.Port()
	if err != nil {
		t.Fatal(err)
	}
	g := &fakeGateway{dev: dev, ns: ns, priv: priv, port: port}
	g.server = apitypes.Server{
		Name: "test-1", Location: "se-sto", Country: "se", Online: true,
		Endpoint:  net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		PublicKey: priv.Public().Base64(), TunnelIPv4: gw4, TunnelIPv6: gw6,
	}
	if bind != nil {
		g.server.CertPin = pin
		if a, ok := bind.TLSAddr().(*net.TCPAddr); ok {
			g.server.TLSPort = a.Port
		}
		if a, ok := bind.QUICAddr().(*net.UDPAddr); ok {
			g.server.QUICPort = a.Port
		}
	}
	// HTTP on the gateway's tunnel address, answering with the caller's
	// address as the echo host of the namespace tests does.
	ln, err := ns.ListenTCP(netip.AddrPortFrom(netip.MustParseAddr(gw4), 80))
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		io.WriteString(w, host)
	})}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	// DNS: "svc.test." has the gateway's address; everything else is
	// NXDOMAIN. Queries are counted, to show names went this way.
	pc, err := ns.ListenUDP(netip.AddrPortFrom(netip.MustParseAddr(gw4), 53))
	if err != nil {
		t.Fatal(err)
	}
	ds := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		if q.Question[0].Name != "svc.test." {
			m.Rcode = dns.RcodeNameError
		} else if q.Question[0].Qtype == dns.TypeA {
			rr, _ := dns.NewRR("svc.test. 60 IN A " + gw4)
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m)
	})}
	go ds.ActivateAndServe()
	t.Cleanup(func() { ds.Shutdown() })
	return g
}

// allow makes the gateway accept the client's key.
func (g *fakeGateway) allow(t testing.TB, st *State) wg.Key {
	t.Helper()
	priv, err := wg.ParseKey(st.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	err = g.dev.SetPeer(wg.Peer{PublicKey: priv.Public(), AllowedIPs: []netip.Prefix{
		netip.MustParsePrefix(st.IPv4), netip.MustParsePrefix(st.IPv6)}})
	if err != nil {
		t.Fatal(err)
	}
	return priv.Public()
}

func testState(t testing.TB) *State {
	t.Helper()
	k, err := wg.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return &State{Control: "http://127.0.0.1:1", PrivateKey: k.Base64(), DeviceID: 1,
		IPv4: "10.64.0.2/32", IPv6: "fd7a:7665:696c::2/128"}
}

func upProxy(t testing.TB, g *fakeGateway, st *State) *Tunnel {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tun, err := Up(ctx, TunnelConfig{State: st, Server: g.server, Mode: ModeProxy,
		SOCKS: "127.0.0.1:0", HTTPProxy: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	t.Cleanup(func() { tun.Close() })
	return tun
}

func socksClient(t testing.TB, addr string) *http.Client {
	t.Helper()
	d, err := proxy.SOCKS5("tcp", addr, nil, proxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	cd := d.(proxy.ContextDialer)
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DialContext: cd.DialContext}}
}

func get(c *http.Client, u string) (string, error) {
	resp, err := c.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", &url.Error{Op: "GET", URL: u, Err: io.ErrUnexpectedEOF}
	}
	return string(b), err
}

func TestProxyMode(t *testing.T) {
	g := newFakeGateway(t)
	st := testState(t)
	g.allow(t, st)
	tun := upProxy(t, g, st)

	s := tun.Status()
	if s.HandshakeAge < 0 || s.Gateway != "test-1" || s.IPv4 != "10.64.0.2/32" || s.SOCKS == "" || s.HTTPProxy == "" {
		t.Fatalf("status = %+v", s)
	}

	socks := socksClient(t, tun.SOCKSAddr())
	pu, _ := url.Parse("http://" + tun.HTTPProxyAddr())
	httpProxy := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
	// CONNECT rather than an absolute URL: the transport uses CONNECT for
	// https only, so dial through the proxy by hand.
	for _, tc := range []struct {
		name string
		c    *http.Client
		url  string
	}{
		{"socks5 address", socks, "http://" + gw4 + "/"},
		{"socks5 name via tunnel DNS", socks, "http://svc.test/"},
		{"http proxy plain", httpProxy, "http://svc.test/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, err := get(tc.c, tc.url)
			if err != nil {
				t.Fatal(err)
			}
			if body != "10.64.0.2" {
				t.Fatalf("gateway saw %q, want the tunnel address", body)
			}
		})
	}
	t.Run("http proxy CONNECT", func(t *testing.T) {
		c, err := net.Dial("tcp", tun.HTTPProxyAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		io.WriteString(c, "CONNECT svc.test:80 HTTP/1.1\r\nHost: svc.test:80\r\n\r\nGET / HTTP/1.1\r\nHost: svc.test\r\nConnection: close\r\n\r\n")
		b, _ := io.ReadAll(c)
		if !strings.HasPrefix(string(b), "HTTP/1.1 200") || !strings.HasSuffix(string(b), "10.64.0.2") {
			t.Fatalf("answer = %q", b)
		}
	})
	t.Run("loopback refused with a reason", func(t *testing.T) {
		// This machine is not behind the tunnel: the proxies say so at
		// once instead of leaving the client to its timeout.
		c, err := net.Dial("tcp", tun.SOCKSAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		c.Write([]byte{5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 80})
		reply := make([]byte, 12)
		if _, err := io.ReadFull(c, reply); err != nil {
			t.Fatalf("SOCKS5 reply: %v", err)
		}
		if reply[3] != socksNotAllowed {
			t.Errorf("SOCKS5 CONNECT 127.0.0.1:80 answered %d, want %d (not allowed)", reply[3], socksNotAllowed)
		}
		resp, err := httpProxy.Get("http://127.0.0.1/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("HTTP proxy GET http://127.0.0.1/ answered %s, want 403", resp.Status)
		}
	})
	t.Run("unknown name fails, not resolved locally", func(t *testing.T) {
		// localhost resolves on every machine; through the tunnel it is
		// NXDOMAIN here, which shows the lookup did not happen locally.
		if _, err := get(socks, "http://localhost/"); err == nil {
			t.Fatal("localhost was reachable through the proxy")
		}
	})
	t.Run("revoked device loses the tunnel", func(t *testing.T) {
		priv, _ := wg.ParseKey(st.PrivateKey)
		if err := g.dev.RemovePeer(priv.Public()); err != nil {
			t.Fatal(err)
		}
		c := socksClient(t, tun.SOCKSAddr())
		c.Timeout = 3 * time.Second
		if _, err := get(c, "http://"+gw4+"/"); err == nil {
			t.Fatal("fetch through a revoked tunnel succeeded")
		}
	})
}

func TestHandshakeFailure(t *testing.T) {
	g := newFakeGateway(t) // never told about the client
	ctx := context.Background()
	_, err := Up(ctx, TunnelConfig{State: testState(t), Server: g.server, Mode: ModeProxy,
		SOCKS: "off", HTTPProxy: "off", HandshakeTimeout: 2 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "no handshake") {
		t.Fatalf("Up with an unknown key: %v, want no handshake", err)
	}
}

func TestControlSocket(t *testing.T) {
	g := newFakeGateway(t)
	st := testState(t)
	g.allow(t, st)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tun, err := Up(ctx, TunnelConfig{State: st, Server: g.server, Mode: ModeProxy, SOCKS: "127.0.0.1:0", HTTPProxy: "off"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	held := make(chan error, 1)
	go func() { held <- Hold(context.Background(), dir, tun) }()

	var s *Status
	for range 200 { // until the socket is there
		if s, err = QueryStatus(ctx, dir); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil || s.Gateway != "test-1" || s.PID != os.Getpid() {
		t.Fatalf("status = %+v, %v", s, err)
	}
	fi, err := os.Stat(filepath.Join(dir, socketFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode = %v, %v", fi, err)
	}
	if err := Disconnect(ctx, dir); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	if err := <-held; err != nil {
		t.Fatalf("Hold: %v", err)
	}
	if _, err := QueryStatus(ctx, dir); err != ErrNotConnected {
		t.Fatalf("status after disconnect: %v", err)
	}
	if err := Disconnect(ctx, dir); err != ErrNotConnected {
		t.Fatalf("second disconnect: %v", err)
	}
}
