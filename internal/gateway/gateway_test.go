package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/waiter"

	"veil/internal/apitypes"
	"veil/internal/logtest"
	"veil/internal/wg"
)

// startGateway runs a netstack gateway against control until the test ends.
func startGateway(t testing.TB, control *fakeControl, allow []netip.Prefix, resolver dns.Handler, opts ...func(*Config)) (*Gateway, *logtest.Buffer) {
	t.Helper()
	g, logs, err := tryStartGateway(t, control, allow, resolver, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return g, logs
}

// tryStartGateway is startGateway, returning New's error (a port taken,
// say) instead of failing the test.
func tryStartGateway(t testing.TB, control *fakeControl, allow []netip.Prefix, resolver dns.Handler, opts ...func(*Config)) (*Gateway, *logtest.Buffer, error) {
	t.Helper()
	logs := &logtest.Buffer{}
	cfg := Config{
		ControlURL:  control.srv.URL,
		Token:       testToken,
		EgressAllow: allow,
		Resolver:    resolver,
		Logger:      slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		ReportEvery: 100 * time.Millisecond,
		PollWait:    2 * time.Second,
		RetryMax:    100 * time.Millisecond,
	}
	for _, o := range opts {
		o(&cfg)
	}
	g, err := New(cfg)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-g.Ready():
	case err := <-done:
		t.Fatalf("gateway stopped: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("gateway not ready")
	}
	return g, logs, nil
}

// client is a WireGuard client built on wireguard-go's device directly
// (not Veil's adapter) over a netstack TUN that lets loopback through, so
// test servers on 127.0.0.1 are reachable through the gateway.
type client struct {
	key  wg.Key
	net  *wg.Netstack
	peer apitypes.Peer // its peer map entry
}

var clientN atomic.Int32

func newClient(t testing.TB, g *Gateway) *client {
	t.Helper()
	n := clientN.Add(1)
	v4 := netip.MustParseAddr(fmt.Sprintf("10.64.0.%d", n+1))
	v6 := netip.MustParseAddr(fmt.Sprintf("fd7a:7665:696c::%x", n+1))
	key, err := wg.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return startClient(t, g, key, v4, v6)
}

// newClientWithKey is a new WireGuard device for the same key and
// addresses as c: a fresh handshake from a known device.
func newClientWithKey(t testing.TB, g *Gateway, c *client) *client {
	t.Helper()
	v4 := netip.MustParsePrefix(c.peer.AllowedIPs[0]).Addr()
	v6 := netip.MustParsePrefix(c.peer.AllowedIPs[1]).Addr()
	return startClient(t, g, c.key, v4, v6)
}

func startClient(t testing.TB, g *Gateway, key wg.Key, v4, v6 netip.Addr) *client {
	t.Helper()
	return startClientBind(t, g, key, v4, v6, conn.NewDefaultBind())
}

// startClientBind is startClient over bind.
func startClientBind(t testing.TB, g *Gateway, key wg.Key, v4, v6 netip.Addr, bind conn.Bind) *client {
	t.Helper()
	tnet, err := wg.NewNetstack(wg.NetstackConfig{Addresses: []netip.Addr{v4, v6}, AllowLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	dev := device.NewDevice(tnet, bind, device.NewLogger(device.LogLevelSilent, ""))
	t.Cleanup(dev.Close)
	gpub := g.PublicKey()
	conf := fmt.Sprintf("private_key=%x\npublic_key=%x\nendpoint=127.0.0.1:%d\nallowed_ip=0.0.0.0/0\nallowed_ip=::/0\n",
		key[:], gpub[:], g.Port())
	if err := dev.IpcSet(conf); err != nil {
		t.Fatal(err)
	}
	if err := dev.Up(); err != nil {
		t.Fatal(err)
	}
	pub := key.Public()
	return &client{key: key, net: tnet, peer: apitypes.Peer{
		PublicKey:  pub.Base64(),
		AllowedIPs: []string{v4.String() + "/32", v6.String() + "/128"},
		Plan:       "paid",
	}}
}

// httpGet fetches url through the tunnel.
func (c *client) httpGet(ctx context.Context, url string) (string, error) {
	hc := &http.Client{Transport: &http.Transport{DialContext: c.net.DialContext, DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// checkRefused fails unless err is the peer's connection being refused:
// the gateway answered the refused flow, and did not leave the peer to
// wait until its own deadline.
func checkRefused(t testing.TB, err error) {
	t.Helper()
	if !strings.Contains(err.Error(), "refused") {
		t.Errorf("got %v, want the connection refused", err)
	}
}

// udpEcho sends msg to addr through the tunnel and returns the answer.
func (c *client) udpEcho(addr netip.AddrPort, msg string) (string, error) {
	uc, err := c.net.DialContext(context.Background(), "udp", addr.String())
	if err != nil {
		return "", err
	}
	defer uc.Close()
	uc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := uc.Write([]byte(msg)); err != nil {
		return "", err
	}
	buf := make([]byte, 1500)
	n, err := uc.Read(buf)
	return string(buf[:n]), err
}

func startUDPEcho(t testing.TB, addr string) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

func startHTTP(t testing.TB) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello through the tunnel")
	}))
	t.Cleanup(srv.Close)
	return srv
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

func TestNetstackTraffic(t *testing.T) {
	control := newFakeControl(t)
	g, logs := startGateway(t, control, loopback, testResolver)
	c := newClient(t, g)
	v := control.set(c.peer)
	waitFor(t, "peer applied", func() bool { return g.Stats().PeerMapVersion >= v })

	srv := startHTTP(t)
	t.Run("tcp", func(t *testing.T) {
		body, err := c.httpGet(testCtx(t), srv.URL)
		if err != nil || body != "hello through the tunnel" {
			t.Fatalf("GET through tunnel = %q, %v", body, err)
		}
	})
	t.Run("carries", func(t *testing.T) {
		// The server asks the gateway whether its visitor came through
		// the tunnel, as the My IP page does.
		answers := make(chan [2]bool, 2)
		who := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			remote := netip.MustParseAddrPort(r.RemoteAddr)
			other := netip.AddrPortFrom(remote.Addr(), remote.Port()+1)
			answers <- [2]bool{g.Carries(remote), g.Carries(other)}
		}))
		t.Cleanup(who.Close)
		if _, err := c.httpGet(testCtx(t), who.URL); err != nil {
			t.Fatal(err)
		}
		if got := <-answers; !got[0] || got[1] {
			t.Errorf("through the tunnel: Carries(visitor) = %v, Carries(another port) = %v", got[0], got[1])
		}
		resp, err := http.Get(who.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := <-answers; got[0] {
			t.Error("a direct visitor is taken for a tunnelled one")
		}
	})
	t.Run("udp", func(t *testing.T) {
		echo := startUDPEcho(t, "127.0.0.1:0")
		got, err := c.udpEcho(echo, "ping over udp")
		if err != nil || got != "ping over udp" {
			t.Fatalf("UDP echo = %q, %v", got, err)
		}
	})
	t.Run("guard refuses", func(t *testing.T) {
		// A real server on 127.0.0.2, outside the allowed 127.0.0.1/32:
		// the guard, not the network, must refuse it.
		ln, err := net.Listen("tcp", "127.0.0.2:0")
		if err != nil {
			t.Skipf("no 127.0.0.2 on this host: %v", err)
		}
		other := httptest.NewUnstartedServer(srv.Config.Handler)
		other.Listener = ln
		other.Start()
		t.Cleanup(other.Close)
		tests := []struct{ name, url string }{
			{"loopback not allowed", other.URL},
			{"gateway's own tunnel address", "http://10.64.0.1:80/"},
			{"another peer", "http://10.64.0.200:80/"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				body, err := c.httpGet(testCtx(t), tt.url)
				if err == nil {
					t.Fatalf("GET %s through tunnel succeeded (%q), want refusal", tt.url, body)
				}
				checkRefused(t, err)
			})
		}
	})
	t.Run("dns", func(t *testing.T) { c.checkDNS(t) })
	t.Run("icmp echo", func(t *testing.T) {
		if pc, _, err := listenEcho(false); err != nil {
			t.Skipf("host allows no ping sockets: %v", err)
		} else {
			pc.Close()
		}
		// 127.0.0.1 is allowed for this gateway; a refused destination
		// must go unanswered.
		if err := c.ping(t, "127.0.0.1"); err != nil {
			t.Fatalf("ping through tunnel: %v", err)
		}
		if err := c.ping(t, "127.0.0.2"); err == nil {
			t.Fatal("ping of a refused destination answered")
		}
	})
	t.Run("report", func(t *testing.T) {
		waitFor(t, "report with one peer and traffic", func() bool {
			r, ok := control.lastReport()
			return ok && r.Peers == 1 && r.RxBytes > 0 && r.TxBytes > 0 && r.PublicKey == g.PublicKey().Base64()
		})
	})
	t.Run("no peer data in logs", func(t *testing.T) {
		out := logs.String()
		for _, secret := range []string{c.peer.PublicKey, "10.64.0.", "fd7a:", "127.0.0.1", srv.URL} {
			if strings.Contains(out, secret) {
				t.Errorf("log holds %q:\n%s", secret, out)
			}
		}
	})
}

// testResolver answers every A query with 192.0.2.53.
var testResolver = dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Answer = append(m.Answer, &dns.A{
		Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
		A:   net.IPv4(192, 0, 2, 53),
	})
	w.WriteMsg(m)
})

// checkDNS queries the gateway's resolver on both tunnel addresses over
// UDP and TCP.
func (c *client) checkDNS(t *testing.T) {
	for _, network := range []string{"udp", "tcp"} {
		for _, server := range []string{"10.64.0.1:53", "[fd7a:7665:696c::1]:53"} {
			t.Run(network+" "+server, func(t *testing.T) {
				nc, err := c.net.DialContext(testCtx(t), network, server)
				if err != nil {
					t.Fatal(err)
				}
				defer nc.Close()
				q := new(dns.Msg)
				q.SetQuestion("example.com.", dns.TypeA)
				dc := &dns.Client{Net: network, Timeout: 10 * time.Second}
				r, _, err := dc.ExchangeWithConn(q, &dns.Conn{Conn: nc})
				if err != nil || len(r.Answer) != 1 {
					t.Fatalf("DNS answer %v, %v", r, err)
				}
			})
		}
	}
}

// ping sends one echo request through the tunnel from a gVisor ICMP
// endpoint of the client's stack.
func (c *client) ping(t testing.TB, dst string) error {
	t.Helper()
	var wq waiter.Queue
	ep, terr := c.net.Stack().NewEndpoint(icmp.ProtocolNumber4, ipv4.ProtocolNumber, &wq)
	if terr != nil {
		return errors.New(terr.String())
	}
	defer ep.Close()
	we, ch := waiter.NewChannelEntry(waiter.ReadableEvents)
	wq.EventRegister(&we)
	defer wq.EventUnregister(&we)
	to := tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(netip.MustParseAddr(dst).As4())}
	msg := []byte{8, 0, 0, 0, 0, 1, 0, 1, 'v', 'e', 'i', 'l'} // echo, id 1, seq 1
	if _, terr := ep.Write(bytes.NewReader(msg), tcpip.WriteOptions{To: &to}); terr != nil {
		return errors.New(terr.String())
	}
	timeout := time.After(3 * time.Second)
	for {
		var buf bytes.Buffer
		_, terr := ep.Read(&buf, tcpip.ReadOptions{})
		if _, ok := terr.(*tcpip.ErrWouldBlock); ok {
			select {
			case <-ch:
				continue
			case <-timeout:
				return errors.New("no echo reply")
			}
		}
		if terr != nil {
			return errors.New(terr.String())
		}
		b := buf.Bytes()
		if len(b) < 8 || b[0] != 0 || string(b[8:]) != "veil" {
			return errors.New("not an echo reply")
		}
		return nil
	}
}

func TestPeerRemoved(t *testing.T) {
	control := newFakeControl(t)
	g, _ := startGateway(t, control, loopback, nil)
	keep, gone := newClient(t, g), newClient(t, g)
	control.set(keep.peer)
	v := control.set(gone.peer)
	waitFor(t, "peers applied", func() bool { return g.Stats().PeerMapVersion >= v })
	srv := startHTTP(t)
	for _, c := range []*client{keep, gone} {
		if _, err := c.httpGet(testCtx(t), srv.URL); err != nil {
			t.Fatalf("GET before removal: %v", err)
		}
	}

	v = control.remove(gone.peer.PublicKey)
	waitFor(t, "removal applied", func() bool { return g.Stats().PeerMapVersion >= v })
	if n := g.Stats().Peers; n != 1 {
		t.Fatalf("%d peers after removal, want 1", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := gone.httpGet(ctx, srv.URL); err == nil {
		t.Fatal("removed peer still reaches the internet")
	}
	if _, err := keep.httpGet(testCtx(t), srv.URL); err != nil {
		t.Fatalf("remaining peer lost its tunnel: %v", err)
	}
}

func TestControlPlaneUnreachable(t *testing.T) {
	control := newFakeControl(t)
	g, _ := startGateway(t, control, loopback, nil)
	c := newClient(t, g)
	v := control.set(c.peer)
	waitFor(t, "peer applied", func() bool { return g.Stats().PeerMapVersion >= v })
	srv := startHTTP(t)

	control.down.Store(true)
	// Let the gateway fail several calls, long polls and reports alike.
	waitFor(t, "gateway to notice", func() bool { return control.failureCount() >= 5 })
	if body, err := c.httpGet(testCtx(t), srv.URL); err != nil || body == "" {
		t.Fatalf("GET while control plane down: %q, %v", body, err)
	}
	if n := g.Stats().Peers; n != 1 {
		t.Fatalf("%d peers while control plane down, want 1", n)
	}

	// While down, the peer is removed and another added; once back, the
	// gateway must catch up.
	late := newClient(t, g)
	control.remove(c.peer.PublicKey)
	v = control.set(late.peer)
	control.down.Store(false)
	waitFor(t, "sync resumed", func() bool { return g.Stats().PeerMapVersion >= v })
	if st := g.Stats(); st.Peers != 0 || st.Authorized != 1 {
		t.Fatalf("after resync: %d active, %d authorised; want 0 and 1", st.Peers, st.Authorized)
	}
	if _, err := late.httpGet(testCtx(t), srv.URL); err != nil {
		t.Fatalf("peer added while control plane was down: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no control", Config{Token: "t"}},
		{"no token", Config{ControlURL: "http://127.0.0.1:1"}},
		{"bad mode", Config{ControlURL: "http://127.0.0.1:1", Token: "t", Mode: "kernel"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil {
				t.Fatal("New succeeded")
			}
		})
	}
}

// TestActivePeersOnDemand: authorised peers reach the device only with
// their first handshake; past MaxPeers active ones a new device is
// refused, and said so in the log, until an active one leaves.
func TestActivePeersOnDemand(t *testing.T) {
	control := newFakeControl(t)
	g, logs := startGateway(t, control, loopback, nil, func(c *Config) { c.MaxPeers = 2 })
	clients := []*client{newClient(t, g), newClient(t, g), newClient(t, g)}
	var v int64
	for _, c := range clients {
		v = control.set(c.peer)
	}
	waitFor(t, "map applied", func() bool { return g.Stats().PeerMapVersion >= v })
	if st := g.Stats(); st.Peers != 0 || st.Authorized != 3 {
		t.Fatalf("before any handshake: %d active, %d authorised; want 0 and 3", st.Peers, st.Authorized)
	}
	srv := startHTTP(t)
	for _, c := range clients[:2] {
		if _, err := c.httpGet(testCtx(t), srv.URL); err != nil {
			t.Fatalf("GET through an on-demand peer: %v", err)
		}
	}
	if st := g.Stats(); st.Peers != 2 {
		t.Fatalf("%d active after two clients, want 2", st.Peers)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(g.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf.GetMetric()[0].GetGauge().GetValue()
	}
	if want := map[string]float64{"veil_gateway_active_peers": 2, "veil_gateway_authorized_peers": 3, "veil_gateway_active_peers_max": 2,
		"veil_gateway_capped_peers": 0, "veil_gateway_cap_drops_total": 0}; !maps.Equal(got, want) {
		t.Errorf("metrics = %v, want %v", got, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := clients[2].httpGet(ctx, srv.URL); err == nil {
		t.Fatal("a third device got in past MaxPeers active")
	}
	if !strings.Contains(logs.String(), "active peers at the device's limit") {
		t.Errorf("no word in the log about the limit:\n%s", logs)
	}

	v = control.remove(clients[0].peer.PublicKey)
	waitFor(t, "removal applied", func() bool { return g.Stats().PeerMapVersion >= v })
	if st := g.Stats(); st.Peers != 1 || st.Authorized != 2 {
		t.Fatalf("after a removal: %d active, %d authorised", st.Peers, st.Authorized)
	}
	if _, err := clients[2].httpGet(testCtx(t), srv.URL); err != nil {
		t.Fatalf("the waiting device after room was freed: %v", err)
	}
}

// TestIdlePeerLeaves: an active peer without a handshake for IdleTimeout
// leaves the device but stays authorised; its next handshake brings it
// back.
func TestIdlePeerLeaves(t *testing.T) {
	control := newFakeControl(t)
	g, _ := startGateway(t, control, loopback, nil, func(c *Config) { c.IdleTimeout = 400 * time.Millisecond })
	c := newClient(t, g)
	v := control.set(c.peer)
	waitFor(t, "map applied", func() bool { return g.Stats().PeerMapVersion >= v })
	srv := startHTTP(t)
	if _, err := c.httpGet(testCtx(t), srv.URL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "idle peer taken off", func() bool { return g.Stats().Peers == 0 })
	if st := g.Stats(); st.Authorized != 1 {
		t.Fatalf("%d authorised after idling, want 1", st.Authorized)
	}
	again := newClientWithKey(t, g, c)
	if _, err := again.httpGet(testCtx(t), srv.URL); err != nil {
		t.Fatalf("the same device after idling: %v", err)
	}
}

func mustKey(t testing.TB, s string) wg.Key {
	t.Helper()
	k, err := wg.ParseKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
