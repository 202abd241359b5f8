package gateway

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"veil/internal/apitypes"
	"veil/internal/pq"
	"veil/internal/wg"
)

// pqClient is a client on Veil's WireGuard adapter, whose pre-shared key
// the test sets and reads.
type pqClient struct {
	key  wg.Key
	dev  *wg.Device
	net  *wg.Netstack
	peer apitypes.Peer
}

var gwTunnel4 = netip.MustParseAddr("10.64.0.1")

// newPQClient starts a device with key that claims the tunnel address
// addr; its peer map entry gives it own instead (the same address unless
// a test spoofs), and psk, if not nil, is its pre-shared key.
func newPQClient(t testing.TB, g *Gateway, key wg.Key, addr, own netip.Addr, psk *wg.Key) *pqClient {
	t.Helper()
	ns, err := wg.NewNetstack(wg.NetstackConfig{Addresses: []netip.Addr{addr}, AllowLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	dev, err := wg.NewDevice(wg.DeviceConfig{TUN: ns, PrivateKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dev.Close)
	if err := dev.SetPeer(wg.Peer{
		PublicKey:    g.PublicKey(),
		AllowedIPs:   []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")},
		Endpoint:     netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(g.Port())),
		PresharedKey: psk,
	}); err != nil {
		t.Fatal(err)
	}
	return &pqClient{key: key, dev: dev, net: ns, peer: apitypes.Peer{
		PublicKey: key.Public().Base64(), AllowedIPs: []string{own.String() + "/32"}, Plan: "paid",
	}}
}

func (c *pqClient) get(ctx context.Context, url string) error {
	hc := &http.Client{Transport: &http.Transport{DialContext: c.net.DialContext, DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// handshake sets the client's pre-shared key to psk and waits for a
// handshake with it.
func (c *pqClient) handshake(t testing.TB, g *Gateway, psk wg.Key) {
	t.Helper()
	if err := c.dev.SetPresharedKey(g.PublicKey(), psk); err != nil {
		t.Fatal(err)
	}
	since := time.Now()
	c.dev.Rehandshake(g.PublicKey())
	waitFor(t, "handshake with the pre-shared key", func() bool {
		ps, _ := c.dev.Peers()
		return len(ps) == 1 && ps[0].LastHandshake.After(since)
	})
}

// request runs both steps of the exchange.
func (c *pqClient) request(ctx context.Context, g *Gateway) (wg.Key, error) {
	psk, err := pq.Request(ctx, c.net.DialContext, gwTunnel4, c.key.Public(), g.PublicKey())
	if err != nil {
		return wg.Key{}, err
	}
	return psk, pq.Confirm(ctx, c.net.DialContext, gwTunnel4, psk)
}

func shortCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newKey(t testing.TB) wg.Key {
	t.Helper()
	k, err := wg.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func gatewayPSK(t testing.TB, g *Gateway, client wg.Key) wg.Key {
	t.Helper()
	psk, ok, err := g.dev.PresharedKey(client.Public())
	if err != nil || !ok {
		t.Fatalf("gateway's peer: held %v, %v", ok, err)
	}
	return psk
}

// TestPQPresharedKey: after the exchange both ends hold the same
// pre-shared key and the tunnel works with it; a device with the same
// WireGuard key but without that pre-shared key, or with another, gets no
// handshake; and no peer sets another's key, even claiming its address.
func TestPQPresharedKey(t *testing.T) {
	control := newFakeControl(t)
	g, logs := startGateway(t, control, loopback, nil)
	srv := startHTTP(t)
	addrA, addrB := netip.MustParseAddr("10.64.1.2"), netip.MustParseAddr("10.64.1.3")
	keyA := newKey(t)
	a := newPQClient(t, g, keyA, addrA, addrA, nil)
	v := control.set(a.peer)
	waitFor(t, "peer applied", func() bool { return g.Stats().PeerMapVersion >= v })
	if err := a.get(testCtx(t), srv.URL); err != nil {
		t.Fatalf("GET before the exchange: %v", err)
	}

	psk, err := a.request(testCtx(t), g)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if psk.IsZero() {
		t.Fatal("the exchange gave the zero key")
	}
	if got := gatewayPSK(t, g, keyA); got != psk {
		t.Fatal("the gateway holds another pre-shared key than the client derived")
	}
	if err := a.dev.SetPeer(wg.Peer{PublicKey: g.PublicKey(), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}, PresharedKey: &psk}); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := a.dev.PresharedKey(g.PublicKey()); got != psk {
		t.Fatal("the client device does not hold the pre-shared key")
	}
	since := time.Now()
	a.dev.Rehandshake(g.PublicKey())
	waitFor(t, "handshake with the pre-shared key", func() bool {
		ps, _ := a.dev.Peers()
		return len(ps) == 1 && ps[0].LastHandshake.After(since)
	})
	if err := a.get(testCtx(t), srv.URL); err != nil {
		t.Fatalf("GET with the pre-shared key: %v", err)
	}

	t.Run("handshake needs the key", func(t *testing.T) {
		wrong := newKey(t)
		for name, k := range map[string]*wg.Key{"without": nil, "with another": &wrong} {
			c := newPQClient(t, g, keyA, addrA, addrA, k)
			if err := c.get(shortCtx(t), srv.URL); err == nil {
				t.Errorf("a device %s pre-shared key got through", name)
			}
			if ps, _ := c.dev.Peers(); len(ps) != 1 || !ps[0].LastHandshake.IsZero() {
				t.Errorf("a device %s pre-shared key completed a handshake", name)
			}
			c.dev.Close()
		}
		c := newPQClient(t, g, keyA, addrA, addrA, &psk)
		if err := c.get(testCtx(t), srv.URL); err != nil {
			t.Fatalf("a device with the pre-shared key: %v", err)
		}
	})

	t.Run("another peer", func(t *testing.T) {
		keyB := newKey(t)
		b := newPQClient(t, g, keyB, addrB, addrB, nil)
		v := control.set(b.peer)
		waitFor(t, "peer applied", func() bool { return g.Stats().PeerMapVersion >= v })
		pskB, err := b.request(testCtx(t), g)
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		if gatewayPSK(t, g, keyB) != pskB || pskB == psk {
			t.Error("the second peer's key was not installed for it alone")
		}
		if gatewayPSK(t, g, keyA) != psk {
			t.Error("the second peer's exchange changed the first peer's key")
		}
		// The same peer claiming the first peer's address: WireGuard
		// drops its packets, so the exchange never reaches the gateway.
		b.dev.Close()
		spoof := newPQClient(t, g, keyB, addrA, addrB, nil)
		if _, err := spoof.request(shortCtx(t), g); err == nil {
			t.Error("an exchange from another peer's address succeeded")
		}
		if gatewayPSK(t, g, keyA) != psk {
			t.Error("a peer claiming another's address changed its key")
		}
	})

	t.Run("kept while idle, gone with the device", func(t *testing.T) {
		g.mu.Lock()
		p, verdict := g.peers.admit(keyA.Public(), g.maxPeers())
		g.mu.Unlock()
		if verdict != admitNo {
			t.Fatalf("admit of a held peer = %v", verdict)
		}
		g.mu.Lock()
		g.peers.deactivate(keyA.Public())
		p, verdict = g.peers.admit(keyA.Public(), g.maxPeers())
		g.peers.activate(keyA.Public(), time.Now())
		g.mu.Unlock()
		if verdict != admitYes || p.PresharedKey == nil || *p.PresharedKey != psk {
			t.Fatal("an idle peer that comes back is not given its pre-shared key")
		}
		v := control.remove(a.peer.PublicKey)
		waitFor(t, "removal applied", func() bool { return g.Stats().PeerMapVersion >= v })
		g.mu.Lock()
		_, kept := g.peers.psk[keyA.Public()]
		_, pending := g.peers.pskPending[keyA.Public()]
		kept = kept || pending
		g.mu.Unlock()
		if kept {
			t.Error("a removed device's pre-shared key stays in RAM")
		}
	})

	if s := logs.String(); containsKey(s, psk) {
		t.Error("the log holds the pre-shared key")
	}
}

func containsKey(s string, k wg.Key) bool {
	return strings.Contains(s, k.Base64()) || strings.Contains(s, hex.EncodeToString(k[:]))
}

// TestPQDisabled: a gateway without the exchange answers no request, and
// the client says the gateway does not offer it.
func TestPQDisabled(t *testing.T) {
	control := newFakeControl(t)
	g, _ := startGateway(t, control, loopback, nil, func(c *Config) { c.DisablePQ = true })
	addr := netip.MustParseAddr("10.64.1.4")
	key := newKey(t)
	c := newPQClient(t, g, key, addr, addr, nil)
	v := control.set(c.peer)
	waitFor(t, "peer applied", func() bool { return g.Stats().PeerMapVersion >= v })
	if _, err := c.request(shortCtx(t), g); !errors.Is(err, pq.ErrUnsupported) {
		t.Fatalf("exchange with a gateway without it: %v, want ErrUnsupported", err)
	}
	if gatewayPSK(t, g, key) != (wg.Key{}) {
		t.Error("a pre-shared key was set")
	}
}

// TestPQConfirm: the gateway installs a key only on its confirmation:
// until then a client with the key it had still gets a handshake, and a
// confirm with a wrong proof, or from another peer, installs nothing.
func TestPQConfirm(t *testing.T) {
	control := newFakeControl(t)
	g, logs := startGateway(t, control, loopback, nil)
	srv := startHTTP(t)
	addrA, addrB := netip.MustParseAddr("10.64.1.5"), netip.MustParseAddr("10.64.1.6")
	keyA, keyB := newKey(t), newKey(t)
	a := newPQClient(t, g, keyA, addrA, addrA, nil)
	b := newPQClient(t, g, keyB, addrB, addrB, nil)
	control.set(a.peer)
	v := control.set(b.peer)
	waitFor(t, "peers applied", func() bool { return g.Stats().PeerMapVersion >= v })
	p0, err := a.request(testCtx(t), g)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}

	// The first step's answer reaches the client, which keeps it pending
	// and does not confirm (as if its answer had been lost).
	p1, err := pq.Request(testCtx(t), a.net.DialContext, gwTunnel4, keyA.Public(), g.PublicKey())
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	if p1.IsZero() || p1 == p0 || gatewayPSK(t, g, keyA) != p0 {
		t.Fatal("the first step changed the installed key")
	}
	a.handshake(t, g, p0)
	if err := a.get(testCtx(t), srv.URL); err != nil {
		t.Fatalf("the client's current key after an unconfirmed request: %v", err)
	}

	pB, err := pq.Request(testCtx(t), b.net.DialContext, gwTunnel4, keyB.Public(), g.PublicKey())
	if err != nil {
		t.Fatalf("B's request: %v", err)
	}
	for _, tc := range []struct {
		name string
		from *pqClient
		psk  wg.Key
	}{
		{"wrong proof", a, newKey(t)},
		{"the other peer's pending key", a, pB},
		{"from another peer", b, p1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := pq.Confirm(testCtx(t), tc.from.net.DialContext, gwTunnel4, tc.psk); !errors.Is(err, pq.ErrRefused) {
				t.Errorf("confirm = %v, want ErrRefused", err)
			}
			if gatewayPSK(t, g, keyA) != p0 || gatewayPSK(t, g, keyB) != (wg.Key{}) {
				t.Error("a refused confirm installed a key")
			}
		})
	}

	if err := pq.Confirm(testCtx(t), a.net.DialContext, gwTunnel4, p1); err != nil {
		t.Fatalf("confirm: %v", err)
	}
	if gatewayPSK(t, g, keyA) != p1 {
		t.Fatal("the confirmed key is not installed")
	}
	// Whether or not the answer reached it, a client with the pending key
	// gets a handshake.
	a.handshake(t, g, p1)
	if err := a.get(testCtx(t), srv.URL); err != nil {
		t.Fatalf("the client's pending key after the confirm: %v", err)
	}
	if s := logs.String(); containsKey(s, p1) || containsKey(s, pB) || strings.Contains(s, addrA.String()) {
		t.Error("the log holds a pre-shared key or a peer's address")
	}
}
