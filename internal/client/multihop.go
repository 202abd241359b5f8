package client

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/conn"

	"veil/internal/apitypes"
	"veil/internal/relay"
	"veil/internal/transport"
	"veil/internal/wg"
)

// Multihop (--via ENTRY): the WireGuard session is with the exit gateway,
// as for a plain connect to it, but its UDP goes to a forwarding port
// that the entry gateway opened for this device (package relay), and the
// entry carries it on to the exit from its own address. The entry sees
// this host's address and ciphertext; the exit sees the entry's address.
// Only plain UDP is relayed: WireGuard over TLS or QUIC would need the
// entry to forward those streams as well, which it does not.

// ErrSameHop is returned when the entry and the exit are one gateway.
var ErrSameHop = errors.New("the entry (--via) and the exit (--location) must be different gateways")

// PickHops chooses the entry gateway matching via and the exit matching
// location among the others, each as PickServer would.
func PickHops(servers []apitypes.Server, via, location string) (entry, exit apitypes.Server, err error) {
	if entry, err = PickServer(servers, via); err != nil {
		return entry, exit, fmt.Errorf("entry: %w", err)
	}
	others := make([]apitypes.Server, 0, len(servers))
	for _, s := range servers {
		if s.Name != entry.Name {
			others = append(others, s)
		}
	}
	if exit, err = PickServer(others, location); err != nil {
		if _, e := PickServer(servers, location); e == nil {
			return entry, exit, ErrSameHop
		}
		return entry, exit, fmt.Errorf("exit: %w", err)
	}
	return entry, exit, nil
}

// hop is a tunnel's entry gateway.
type hop struct {
	entry apitypes.Server
	// entryEP is the entry's WireGuard endpoint, where relays are opened;
	// exitEP the exit's, which the relay forwards to.
	entryEP, exitEP netip.AddrPort
	bind            *replyBind
	// reopen keeps a reconnect and a key rotation's reopen apart.
	reopen sync.Mutex
}

// openTimeout bounds one relay open; openResend is the wait for a reply
// before the open goes again.
const (
	openTimeout = 10 * time.Second
	openResend  = time.Second
)

// newHop prepares cfg for a tunnel through cfg.Via, if set: sp's endpoint
// becomes the entry's, where the first message goes, and the bind one
// that hands relay replies over. The transport is plain UDP.
func newHop(ctx context.Context, cfg *TunnelConfig, sp *tunnelSpec) (*hop, error) {
	if cfg.Via == nil {
		return nil, nil
	}
	if cfg.Via.Name == cfg.Server.Name {
		return nil, ErrSameHop
	}
	switch cfg.Transport {
	case "", transport.UDP, transport.Auto:
		cfg.Transport = transport.UDP
	default:
		return nil, fmt.Errorf("multihop relays WireGuard over plain UDP only, not over %s: use --transport udp", cfg.Transport)
	}
	if _, err := wg.ParseKey(cfg.Via.PublicKey); err != nil {
		return nil, fmt.Errorf("entry gateway %s has no valid key", cfg.Via.Name)
	}
	ep, err := serverEndpoint(ctx, *cfg.Via, true)
	if err != nil {
		return nil, fmt.Errorf("entry gateway: %w", err)
	}
	h := &hop{entry: *cfg.Via, entryEP: ep, exitEP: sp.endpoint, bind: newReplyBind(cfg.Bind)}
	cfg.Bind = h.bind
	sp.endpoint = ep
	return h, nil
}

// flows are what the kill switch lets out for the hop: opens to the
// entry's WireGuard port and the relay's port.
func (h *hop) flows(relayEP netip.AddrPort) flows {
	f := flows{udp: []netip.AddrPort{h.entryEP}}
	if relayEP.IsValid() && relayEP != h.entryEP {
		f.udp = append(f.udp, relayEP)
	}
	return f
}

// openHop opens the relay to the exit and points the tunnel's endpoint
// at it; called before the exit becomes the device's peer.
func (t *Tunnel) openHop() error {
	ctx, cancel := context.WithTimeout(context.Background(), min(openTimeout, t.cfg.HandshakeTimeout))
	defer cancel()
	ep, err := t.openRelay(ctx, t.hop.entry, t.hop.entryEP, t.hop.exitEP)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.endpoint = ep
	t.mu.Unlock()
	if t.tun != nil {
		return t.tun.allowEndpoints(t.hop.flows(ep))
	}
	return nil
}

// openRelay asks entry, at entryEP, for a forwarding port to exitEP and
// returns it. The open goes from WireGuard's own socket, the one whose
// datagrams the relay will take.
func (t *Tunnel) openRelay(ctx context.Context, entry apitypes.Server, entryEP, exitEP netip.AddrPort) (netip.AddrPort, error) {
	priv, err := wg.ParseKey(t.cfg.State.PrivateKey)
	if err != nil {
		return netip.AddrPort{}, errors.New("the saved device key is damaged: run `veil login` again")
	}
	entryKey, err := wg.ParseKey(entry.PublicKey)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("entry gateway %s has no valid key", entry.Name)
	}
	key, err := relay.Key(priv, entryKey, priv.Public())
	if err != nil {
		return netip.AddrPort{}, err
	}
	dst, err := t.hop.bind.ParseEndpoint(entryEP.String())
	if err != nil {
		return netip.AddrPort{}, err
	}
	t.hop.bind.drain()
	tick := time.NewTicker(openResend)
	defer tick.Stop()
	sent := make(map[int64]bool)
	for {
		// A new time each try: the entry takes no open twice.
		now := time.Now()
		sent[now.UnixNano()] = true
		msg := relay.Open{Client: priv.Public(), Time: now, Exit: exitEP}.Marshal(key)
		if err := t.hop.bind.Send([][]byte{msg}, dst); err != nil {
			t.log.Debug("sending the relay open failed") // the error names the entry's address
		}
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return netip.AddrPort{}, fmt.Errorf("the entry gateway %s did not open a relay (is it online, and this device still registered?)", entry.Name)
			case <-tick.C:
				waiting = false
			case b := <-t.hop.bind.replies:
				r, err := relay.ParseReply(b, key)
				if err != nil || !sent[r.Time.UnixNano()] {
					continue // not the entry's answer to us
				}
				if err := r.Status.Err(); err != nil {
					return netip.AddrPort{}, err
				}
				return netip.AddrPortFrom(entryEP.Addr(), r.Port), nil
			}
		}
	}
}

// reconnectHop is reconnect for a multihop tunnel: the exit as a plain
// tunnel would find it, through the same entry, whose relay is opened
// again (a relay the entry still holds keeps its port). Never the exit
// directly: that would show it this host's address.
func (t *Tunnel) reconnectHop(ctx context.Context) (changed bool, err error) {
	t.hop.reopen.Lock()
	defer t.hop.reopen.Unlock()
	servers, err := t.fetchServers(ctx)
	if err != nil {
		return false, errControl
	}
	t.mu.Lock()
	cur, curKey, curEP := t.server, t.peer, t.endpoint
	t.mu.Unlock()
	entry, ok := findOnline(servers, t.hop.entry.Name)
	if !ok {
		return false, fmt.Errorf("entry: %w", ErrNoServer)
	}
	next, ok := findOnline(servers, cur.Name)
	if !ok {
		if _, next, err = PickHops(servers, entry.Name, t.cfg.Location); err != nil {
			return false, ErrNoServer
		}
	}
	next.TLSPort, next.QUICPort = 0, 0 // not relayed
	key, err := wg.ParseKey(next.PublicKey)
	if err != nil {
		return false, errors.New("the gateway's listed key is not valid")
	}
	entryEP, err := serverEndpoint(ctx, entry, t.tun == nil)
	if err != nil {
		return false, errors.New("cannot resolve the entry gateway's endpoint")
	}
	exitEP, err := serverEndpoint(ctx, next, t.tun == nil)
	if err != nil {
		return false, errors.New("cannot resolve the gateway's endpoint")
	}
	if t.tun != nil && entryEP != t.hop.entryEP {
		t.opMu.Lock()
		err := t.tun.allowEndpoints(t.hop.flows(curEP).plus(flows{udp: []netip.AddrPort{entryEP}}))
		t.opMu.Unlock()
		if err != nil {
			return false, err
		}
	}
	octx, cancel := context.WithTimeout(ctx, openTimeout)
	ep, err := t.openRelay(octx, entry, entryEP, exitEP)
	cancel()
	if err != nil {
		return false, errors.New("the entry gateway did not open a relay")
	}
	t.mu.Lock()
	t.hop.entry, t.hop.entryEP, t.hop.exitEP = entry, entryEP, exitEP
	t.mu.Unlock()
	if key == curKey && ep == curEP && next.Name == cur.Name {
		return false, nil
	}
	if err := t.movePeer(next, key, ep, t.tunnelDNS(next)); err != nil {
		return false, err
	}
	if t.tun != nil {
		// movePeer lets out the relay's port alone: the entry's
		// WireGuard port stays open for the next open.
		t.opMu.Lock()
		err = t.tun.allowEndpoints(t.hop.flows(ep))
		t.opMu.Unlock()
	}
	return true, err
}

// rehop opens the relay again after a key rotation: the entry holds the
// relay for the old key, which it drops once the peer map does. Without
// a hop it does nothing.
func (t *Tunnel) rehop(ctx context.Context) error {
	if t.hop == nil {
		return nil
	}
	if _, err := t.reconnectHop(ctx); err != nil {
		return fmt.Errorf("opening the relay for the new key: %w", err)
	}
	return nil
}

// replyBind is the client's UDP bind, with relay replies taken out of
// what it receives for openRelay.
type replyBind struct {
	conn.Bind
	replies chan []byte
}

func newReplyBind(b conn.Bind) *replyBind {
	if b == nil {
		b = conn.NewDefaultBind()
	}
	return &replyBind{Bind: b, replies: make(chan []byte, 8)}
}

// Open opens the wrapped bind and takes the replies out of what it
// receives.
func (b *replyBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	fns, port, err := b.Bind.Open(port)
	if err != nil {
		return nil, 0, err
	}
	return relay.Filter(fns, relay.IsReply, func(msg []byte, _ conn.Endpoint) {
		select {
		case b.replies <- msg:
		default:
		}
	}), port, nil
}

// drain drops replies left from an earlier open.
func (b *replyBind) drain() {
	for {
		select {
		case <-b.replies:
		default:
			return
		}
	}
}

// viaName is what status shows as the entry, "" without one; t.mu held.
func (t *Tunnel) viaName() string {
	if t.hop == nil {
		return ""
	}
	return t.hop.entry.Name
}
