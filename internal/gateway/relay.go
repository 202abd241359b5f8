package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/conn"

	"veil/internal/apitypes"
	"veil/internal/relay"
	"veil/internal/wg"
)

// Multihop: this gateway as the entry. A client opens a relay with a
// message on the WireGuard port (package relay); the entry gives it a UDP
// port of its own that forwards the client's datagrams, from the entry's
// address, to the exit gateway's WireGuard port and the exit's back. The
// entry sees the client's address and ciphertext; the exit sees the
// entry's address. All of it lives in RAM: a relay holds the client's
// current address only while it forwards, and nothing is logged.
const (
	// relayIdle is how long a relay lives without a datagram from its
	// client; the client's keepalive (25 s) keeps it.
	relayIdle = 3 * time.Minute
	// relayWindow is how far an open's time may be from the entry's
	// clock; an open no newer than the device's last is refused (replay).
	relayWindow = 2 * time.Minute
	// maxRelays bounds the relays held at once.
	maxRelays = 4096
	// exitsRefresh is how often an open naming an unknown exit may make
	// the entry fetch the server list again.
	exitsRefresh = 5 * time.Second
	relaySweep   = 30 * time.Second
)

// relayAuth is the entry's verdict on a device key.
type relayAuth int

const (
	relayUnknown relayAuth = iota // not in the peer map: no answer at all
	relayFree                     // a free-plan device: refused
	relayOK
)

// relays are the entry's forwarding ports, one per device at most.
type relays struct {
	// priv is the gateway's key, for the opens' MAC.
	priv func() wg.Key
	// auth says whether a device may relay, from the peer map.
	auth func(wg.Key) relayAuth
	// exits lists the WireGuard endpoints of the online gateways.
	exits func(ctx context.Context) (map[netip.AddrPort]bool, error)
	// send answers an open through the bind it came on.
	send func(msg []byte, ep conn.Endpoint) error
	now  func() time.Time

	opens chan pendingOpen

	mu      sync.Mutex
	byKey   map[wg.Key]*relayPort
	last    map[wg.Key]time.Time // each device's newest open, within relayWindow
	known   map[netip.AddrPort]bool
	knownAt time.Time
	closed  bool
}

type pendingOpen struct {
	msg []byte
	ep  conn.Endpoint
}

// relayPort is one client's forwarding port.
type relayPort struct {
	conn *net.UDPConn
	exit netip.AddrPort

	mu     sync.Mutex
	client netip.AddrPort
	lastRx time.Time
}

func newRelays() *relays {
	return &relays{
		now:   time.Now,
		opens: make(chan pendingOpen, 256),
		byKey: make(map[wg.Key]*relayPort),
		last:  make(map[wg.Key]time.Time),
	}
}

// relayBind takes the relay opens out of the WireGuard port's traffic.
type relayBind struct {
	conn.Bind
	r *relays
}

// Open opens the wrapped bind and takes the opens out of what it
// receives.
func (b *relayBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	fns, port, err := b.Bind.Open(port)
	if err != nil {
		return nil, 0, err
	}
	return relay.Filter(fns, relay.IsOpen, func(msg []byte, ep conn.Endpoint) {
		select {
		case b.r.opens <- pendingOpen{msg: msg, ep: ep}:
		default: // saturated: the client sends again
		}
	}), port, nil
}

// run answers opens and sweeps idle and revoked relays until ctx ends.
func (r *relays) run(ctx context.Context) {
	tick := time.NewTicker(relaySweep)
	defer tick.Stop()
	defer r.close()
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-r.opens:
			r.handle(ctx, p)
		case <-tick.C:
			r.sweep()
		}
	}
}

// handle answers one open. One whose device the peer map does not hold,
// or whose MAC fails, gets no answer: the port says nothing to strangers.
func (r *relays) handle(ctx context.Context, p pendingOpen) {
	o, err := relay.ParseOpen(p.msg)
	if err != nil {
		return
	}
	verdict := r.auth(o.Client)
	if verdict == relayUnknown {
		return
	}
	key, err := relay.Key(r.priv(), o.Client, o.Client)
	if err != nil || !relay.CheckOpen(p.msg, key) {
		return
	}
	now := r.now()
	if o.Time.Before(now.Add(-relayWindow)) || o.Time.After(now.Add(relayWindow)) {
		return
	}
	client, err := netip.ParseAddrPort(p.ep.DstToString())
	if err != nil {
		return
	}
	client = netip.AddrPortFrom(client.Addr().Unmap(), client.Port())
	r.mu.Lock()
	if last, ok := r.last[o.Client]; ok && !o.Time.After(last) {
		r.mu.Unlock()
		return // a replay, or an open older than one already taken
	}
	r.last[o.Client] = o.Time
	r.mu.Unlock()

	reply := relay.Reply{Time: o.Time}
	switch {
	case verdict == relayFree:
		reply.Status = relay.NotAllowed
	case !r.isExit(ctx, o.Exit):
		reply.Status = relay.UnknownExit
	default:
		port, err := r.allocate(o.Client, o.Exit, client)
		if err != nil {
			reply.Status = relay.Busy
		} else {
			reply.Port = port
		}
	}
	r.send(reply.Marshal(key), p.ep)
}

// isExit reports whether ap is an online gateway's WireGuard endpoint,
// fetching the list again if it is not known and the last fetch is old.
func (r *relays) isExit(ctx context.Context, ap netip.AddrPort) bool {
	r.mu.Lock()
	ok, at := r.known[ap], r.knownAt
	r.mu.Unlock()
	if ok || r.now().Sub(at) < exitsRefresh {
		return ok
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	known, err := r.exits(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.knownAt = r.now()
	if err == nil {
		r.known = known
	}
	return r.known[ap]
}

// allocate gives the device a forwarding port to exit, or points the one
// it has, to the same exit, at the client's current address.
func (r *relays) allocate(dev wg.Key, exit, client netip.AddrPort) (uint16, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, net.ErrClosed
	}
	if rp := r.byKey[dev]; rp != nil {
		if rp.exit == exit {
			rp.mu.Lock()
			rp.client, rp.lastRx = client, r.now()
			rp.mu.Unlock()
			return uint16(rp.conn.LocalAddr().(*net.UDPAddr).Port), nil
		}
		rp.conn.Close()
		delete(r.byKey, dev)
	}
	if len(r.byKey) >= maxRelays {
		return 0, errRelayFull
	}
	c, err := net.ListenUDP("udp", nil)
	if err != nil {
		return 0, err
	}
	rp := &relayPort{conn: c, exit: exit, client: client, lastRx: r.now()}
	r.byKey[dev] = rp
	go rp.forward(r.now)
	return uint16(c.LocalAddr().(*net.UDPAddr).Port), nil
}

var errRelayFull = errors.New("relay limit reached")

// forward carries datagrams between the client and the exit until the
// port is closed. Anything from another address is dropped.
func (rp *relayPort) forward(now func() time.Time) {
	buf := make([]byte, 65535)
	for {
		n, from, err := rp.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		rp.mu.Lock()
		client := rp.client
		if from == client {
			rp.lastRx = now()
		}
		rp.mu.Unlock()
		switch from {
		case rp.exit:
			rp.conn.WriteToUDPAddrPort(buf[:n], client)
		case client:
			rp.conn.WriteToUDPAddrPort(buf[:n], rp.exit)
		}
	}
}

// sweep closes the relays whose client went quiet or whose device the
// peer map no longer authorises, and forgets old open times.
func (r *relays) sweep() {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, rp := range r.byKey {
		rp.mu.Lock()
		idle := now.Sub(rp.lastRx) > relayIdle
		rp.mu.Unlock()
		if idle || r.auth(k) != relayOK {
			rp.conn.Close()
			delete(r.byKey, k)
		}
	}
	for k, t := range r.last {
		if now.Sub(t) > 2*relayWindow {
			delete(r.last, k)
		}
	}
}

// count returns the relays held, for the aggregate stats.
func (r *relays) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byKey)
}

func (r *relays) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for k, rp := range r.byKey {
		rp.conn.Close()
		delete(r.byKey, k)
	}
}

// relayAuth says whether the peer map lets the device relay: any device
// it authorises, but those of the free plan.
func (g *Gateway) relayAuth(k wg.Key) relayAuth {
	g.mu.Lock()
	defer g.mu.Unlock()
	a, ok := g.peers.peers[k]
	if !ok {
		return relayUnknown
	}
	if free, ok := g.peers.classes[planFree]; ok && a.class == free {
		return relayFree
	}
	return relayOK
}

// planFree is the peer map's class of free-plan devices.
const planFree = "free"

// relayExits fetches the online gateways' WireGuard endpoints, the only
// places a relay forwards to; this gateway's own is left out.
func (g *Gateway) relayExits(ctx context.Context) (map[netip.AddrPort]bool, error) {
	// The list is public: no token goes with it.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.cfg.ControlURL+"/api/v1/servers", nil)
	if err != nil {
		return nil, err
	}
	resp, err := g.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("server list: %s", resp.Status)
	}
	var servers []apitypes.Server
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&servers); err != nil {
		return nil, fmt.Errorf("decoding the server list: %w", err)
	}
	own := g.PublicKey().Base64()
	out := make(map[netip.AddrPort]bool)
	for _, s := range servers {
		if !s.Online || s.PublicKey == own {
			continue
		}
		for _, ep := range append([]string{s.Endpoint}, s.EndpointAddrs...) {
			if ap, err := netip.ParseAddrPort(ep); err == nil {
				out[netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())] = true
			}
		}
	}
	return out, nil
}

// relayBind wraps the WireGuard port's bind (nil: wireguard-go's default)
// so that it takes relay opens out for g.relays.
func (g *Gateway) relayBind(b conn.Bind) conn.Bind {
	if b == nil {
		b = conn.NewDefaultBind()
	}
	rb := &relayBind{Bind: b, r: newRelays()}
	rb.r.priv = func() wg.Key { return g.priv }
	rb.r.auth = g.relayAuth
	rb.r.exits = g.relayExits
	rb.r.send = func(msg []byte, ep conn.Endpoint) error { return rb.Bind.Send([][]byte{msg}, ep) }
	g.relays = rb.r
	return rb
}
