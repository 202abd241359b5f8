package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"veil/internal/apitypes"
	"veil/internal/pq"
	"veil/internal/wg"
)

// pqPeers is the fake gateway's half of the exchange: peers known by
// their tunnel address, as the real gateway knows them. lose cuts the
// connection instead of the answer to the step whose path it names,
// after the step's work is done.
type pqPeers struct {
	dev     *wg.Device
	mu      sync.Mutex
	peers   map[netip.Addr]wg.Key
	pending map[wg.Key]wg.Key
	calls   int
	lose    string
}

func (p *pqPeers) Offer(src netip.Addr, respond func(wg.Key) (wg.Key, error)) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key, ok := p.peers[src]
	if !ok {
		return false, nil
	}
	psk, err := respond(key)
	if err != nil {
		return false, err
	}
	p.calls++
	p.pending[key] = psk
	return true, nil
}

func (p *pqPeers) Confirm(src netip.Addr, proves func(wg.Key) bool) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key, ok := p.peers[src]
	psk, pending := p.pending[key]
	if !ok || !pending || !proves(psk) {
		return false, nil
	}
	delete(p.pending, key)
	return true, p.dev.SetPresharedKey(key, psk)
}

func (p *pqPeers) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// losing makes the gateway lose the answers to path's step from now on;
// "" answers again.
func (p *pqPeers) losing(path string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lose = path
}

func (p *pqPeers) ServeHTTP(w http.ResponseWriter, r *http.Request, h http.Handler) {
	p.mu.Lock()
	lose := p.lose == r.URL.Path
	p.mu.Unlock()
	if !lose {
		h.ServeHTTP(w, r)
		return
	}
	h.ServeHTTP(httptest.NewRecorder(), r)
	if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
		c.Close()
	}
}

// servePQ makes the fake gateway offer the exchange to the client st.
func (g *fakeGateway) servePQ(t testing.TB, st *State, client wg.Key) *pqPeers {
	t.Helper()
	p := &pqPeers{dev: g.dev, peers: map[netip.Addr]wg.Key{netip.MustParsePrefix(st.IPv4).Addr(): client},
		pending: map[wg.Key]wg.Key{}}
	ln, err := g.ns.ListenTCP(netip.AddrPortFrom(netip.MustParseAddr(gw4), pq.Port))
	if err != nil {
		t.Fatal(err)
	}
	h := pq.Handler(g.priv.Public(), p)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.ServeHTTP(w, r, h) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return p
}

func upPQ(t testing.TB, g *fakeGateway, st *State, dir string, noPQ bool, opts ...func(*TunnelConfig)) *Tunnel {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A new device's first initiation may carry the same coarse
	// timestamp as the last one's (the cases follow each other within
	// milliseconds), which the gateway drops as a replay: the timeout
	// holds wireguard-go's retry after Rekey-Timeout (5 s).
	cfg := TunnelConfig{State: st, Server: g.server, Mode: ModeProxy, Dir: dir, NoPQ: noPQ,
		SOCKS: "off", HTTPProxy: "off", HandshakeTimeout: 7 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	tun, err := Up(ctx, cfg)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	t.Cleanup(func() { tun.Close() })
	return tun
}

// psks returns the pre-shared key each end holds for the other.
func psks(t testing.TB, g *fakeGateway, tun *Tunnel, client wg.Key) (gateway, local wg.Key) {
	t.Helper()
	gateway, ok, err := g.dev.PresharedKey(client)
	if err != nil || !ok {
		t.Fatalf("gateway's peer: %v, %v", ok, err)
	}
	local, ok, err = tun.dev.PresharedKey(g.priv.Public())
	if err != nil || !ok {
		t.Fatalf("client's peer: %v, %v", ok, err)
	}
	return gateway, local
}

func checkTunnel(t testing.TB, tun *Tunnel) {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: tun.DialContext}}
	if body, err := get(hc, "http://"+gw4+"/"); err != nil || body != "10.64.0.2" {
		t.Fatalf("GET through the tunnel = %q, %v", body, err)
	}
}

// TestPQ: connect agrees a pre-shared key that both ends hold, and says
// so; a reconnect starts with the saved key; a gateway that lost it, or
// never offered the exchange, still gets a tunnel, and --no-pq asks for
// none.
func TestPQ(t *testing.T) {
	g := newFakeGateway(t)
	st := testState(t)
	client := g.allow(t, st)
	peers := g.servePQ(t, st, client)
	dir := t.TempDir()

	tun := upPQ(t, g, st, dir, false)
	if !tun.Status().QuantumResistant {
		t.Fatal("status: not quantum-resistant after the exchange")
	}
	gk, lk := psks(t, g, tun, client)
	if gk.IsZero() || gk != lk {
		t.Fatalf("pre-shared keys: gateway's zero %v, equal to the client's %v", gk.IsZero(), gk == lk)
	}
	checkTunnel(t, tun)
	if fi, err := os.Stat(filepath.Join(dir, pqFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("saved key: %v, %v", fi, err)
	}
	tun.Close()

	t.Run("reconnect", func(t *testing.T) {
		// The gateway still holds the key: the first handshake needs it.
		tun := upPQ(t, g, st, dir, false)
		checkTunnel(t, tun)
		gk2, lk2 := psks(t, g, tun, client)
		if !tun.Status().QuantumResistant || gk2 != lk2 || gk2 == gk {
			t.Error("a reconnect did not agree a new pre-shared key")
		}
		tun.Close()
	})
	t.Run("gateway lost the key", func(t *testing.T) {
		if err := g.dev.SetPresharedKey(client, wg.Key{}); err != nil {
			t.Fatal(err)
		}
		tun := upPQ(t, g, st, dir, false)
		checkTunnel(t, tun)
		if gk, lk := psks(t, g, tun, client); !tun.Status().QuantumResistant || gk.IsZero() || gk != lk {
			t.Error("no new pre-shared key after falling back to none")
		}
		tun.Close()
	})
	t.Run("no-pq", func(t *testing.T) {
		if err := g.dev.SetPresharedKey(client, wg.Key{}); err != nil {
			t.Fatal(err)
		}
		before := peers.count()
		tun := upPQ(t, g, st, t.TempDir(), true)
		checkTunnel(t, tun)
		if _, lk := psks(t, g, tun, client); tun.Status().QuantumResistant || !lk.IsZero() || peers.count() != before {
			t.Error("--no-pq still agreed a pre-shared key")
		}
		tun.Close()
	})
}

// TestPQUnsupported: a gateway without the exchange gets a tunnel all
// the same, reported as not quantum-resistant.
func TestPQUnsupported(t *testing.T) {
	g := newFakeGateway(t)
	st := testState(t)
	client := g.allow(t, st)
	tun := upPQ(t, g, st, t.TempDir(), false)
	checkTunnel(t, tun)
	if gk, lk := psks(t, g, tun, client); tun.Status().QuantumResistant || !gk.IsZero() || !lk.IsZero() {
		t.Error("a pre-shared key without the exchange")
	}
}

// saved reads the keys in the state directory's pq-psk after the two
// WireGuard keys: the current one and, if any, the pending one.
func saved(t testing.TB, dir string) (current, pending wg.Key) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, pqFile))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	if len(f) != 3 && len(f) != 4 {
		t.Fatalf("pq-psk has %d fields", len(f))
	}
	for i, s := range f[2:] {
		k, err := wg.ParseKey(s)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			current = k
		} else {
			pending = k
		}
	}
	return current, pending
}

// save writes pq-psk as a client killed at some step would have left it.
func save(t testing.TB, dir string, client, gateway, current, pending wg.Key) {
	t.Helper()
	line := client.Base64() + " " + gateway.Base64() + " " + current.Base64() + " " + pending.Base64() + "\n"
	if err := os.WriteFile(filepath.Join(dir, pqFile), []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
}

// agreed checks that both ends hold the same non-zero pre-shared key, the
// tunnel works and says it is quantum-resistant, and returns the key.
func agreed(t testing.TB, g *fakeGateway, tun *Tunnel, client wg.Key) wg.Key {
	t.Helper()
	gk, lk := psks(t, g, tun, client)
	if gk.IsZero() || gk != lk || !tun.Status().QuantumResistant {
		t.Fatalf("pre-shared keys: gateway's zero %v, equal to the client's %v; quantum-resistant %v",
			gk.IsZero(), gk == lk, tun.Status().QuantumResistant)
	}
	checkTunnel(t, tun)
	return gk
}

func randomKey(t testing.TB) wg.Key {
	t.Helper()
	k, err := wg.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestPQLostAnswers: whichever answer of the exchange is lost, or
// wherever the client is killed, the client keeps a key the gateway holds
// and gets a tunnel with it.
func TestPQLostAnswers(t *testing.T) {
	g := newFakeGateway(t)
	st := testState(t)
	client := g.allow(t, st)
	peers := g.servePQ(t, st, client)
	dir := t.TempDir()
	tun := upPQ(t, g, st, dir, false)
	p0 := agreed(t, g, tun, client)
	tun.Close()

	t.Run("request's answer lost", func(t *testing.T) {
		peers.losing(pq.Path)
		defer peers.losing("")
		tun := upPQ(t, g, st, dir, false)
		defer tun.Close()
		if agreed(t, g, tun, client) != p0 {
			t.Error("the gateway installed the key whose offer was lost")
		}
		peers.mu.Lock()
		offered := len(peers.pending)
		peers.mu.Unlock()
		if offered != 1 {
			t.Fatal("the gateway made no offer")
		}
		if cur, pend := saved(t, dir); cur != p0 || !pend.IsZero() {
			t.Error("the saved keys changed")
		}
	})
	t.Run("killed after the request's answer", func(t *testing.T) {
		// Saved pending, never confirmed: the gateway still holds p0.
		save(t, dir, client, g.priv.Public(), p0, randomKey(t))
		tun := upPQ(t, g, st, dir, false)
		defer tun.Close()
		p0 = agreed(t, g, tun, client)
	})
	t.Run("confirm's answer lost", func(t *testing.T) {
		peers.losing(pq.ConfirmPath)
		defer peers.losing("")
		tun := upPQ(t, g, st, dir, false)
		defer tun.Close()
		p1 := agreed(t, g, tun, client)
		if p1 == p0 {
			t.Fatal("the confirm installed nothing")
		}
		if cur, pend := saved(t, dir); cur != p1 || !pend.IsZero() {
			t.Error("the key the handshake showed installed is not saved as current")
		}
		p0 = p1
	})
	t.Run("killed after the confirm", func(t *testing.T) {
		// The gateway installed the pending key; the client never heard.
		save(t, dir, client, g.priv.Public(), randomKey(t), p0)
		tun := upPQ(t, g, st, dir, false)
		defer tun.Close()
		agreed(t, g, tun, client)
	})
}

// TestPQWatch: when no handshake comes, Watch tries the pending key
// (which the gateway installed without the client hearing) and makes it
// current once it gets a handshake.
func TestPQWatch(t *testing.T) {
	g := newFakeGateway(t)
	st := testState(t)
	client := g.allow(t, st)
	g.servePQ(t, st, client)
	dir := t.TempDir()
	tun := upPQ(t, g, st, dir, false, func(c *TunnelConfig) {
		c.StaleAfter = 2 * time.Second
		c.Servers = func(context.Context) ([]apitypes.Server, error) { return []apitypes.Server{g.server}, nil }
	})
	p0 := agreed(t, g, tun, client)
	p1 := randomKey(t)
	tun.mu.Lock()
	tun.pq.pending = p1
	tun.mu.Unlock()
	if err := g.dev.SetPresharedKey(client, p1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go tun.Watch(ctx)
	deadline := time.Now().Add(30 * time.Second)
	for {
		tun.mu.Lock()
		st := tun.pq
		tun.mu.Unlock()
		if st.current == p1 && st.pending.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Watch did not settle on the pending key (current is p0: %v)", st.current == p0)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if cur, pend := saved(t, dir); cur != p1 || !pend.IsZero() {
		t.Error("the key Watch found is not saved as current")
	}
	checkTunnel(t, tun)
}

// TestCyclePSK: Watch's fallback tries pending, current, then none, and
// goes back to the first (for the next transport) once all were tried.
func TestCyclePSK(t *testing.T) {
	g := newFakeGateway(t)
	st := testState(t)
	g.allow(t, st)
	tun := upPQ(t, g, st, t.TempDir(), true)
	p0, p1 := randomKey(t), randomKey(t)
	tun.mu.Lock()
	tun.pq = pqState{gateway: tun.peer, current: p0, pending: p1, using: p0}
	tun.mu.Unlock()
	for i, want := range []struct {
		key     wg.Key
		wrapped bool
	}{{p1, false}, {wg.Key{}, false}, {p1, true}, {p0, false}, {wg.Key{}, false}, {p1, true}} {
		on, wrapped, changed := tun.cyclePSK()
		if k, _, _ := tun.dev.PresharedKey(tun.peer); k != want.key || on != !want.key.IsZero() || wrapped != want.wrapped || !changed {
			t.Fatalf("step %d: the device uses the wanted key %v; on %v, wrapped %v (want %v), changed %v",
				i, k == want.key, on, wrapped, want.wrapped, changed)
		}
	}
}
