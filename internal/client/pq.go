package client

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"veil/internal/pq"
	"veil/internal/wg"
)

// pqFile, in the state directory, keeps the last post-quantum pre-shared
// key agreed with a gateway (mode 0600, like the device key), so that a
// new `veil connect` reaches a gateway that still holds it.
const pqFile = "pq-psk"

// pqTimeout bounds one exchange with the gateway. A gateway without the
// exchange refuses the connection at once (netstack) or drops it (tun).
const pqTimeout = 10 * time.Second

// pqState is the tunnel's post-quantum pre-shared key: the last one
// agreed, for which pair of WireGuard keys, and whether the device uses it
// now.
type pqState struct {
	client, gateway wg.Key
	psk             wg.Key
	inUse           bool
}

// loadPQ takes the saved pre-shared key if it was agreed between client
// and gateway: the first handshake then uses it, as the gateway expects.
func (t *Tunnel) loadPQ(client, gateway wg.Key) {
	if t.cfg.NoPQ || t.cfg.Dir == "" {
		return
	}
	b, err := os.ReadFile(filepath.Join(t.cfg.Dir, pqFile))
	if err != nil {
		return
	}
	f := strings.Fields(string(b))
	if len(f) != 3 {
		return
	}
	var keys [3]wg.Key
	for i, s := range f {
		if keys[i], err = wg.ParseKey(s); err != nil {
			return
		}
	}
	if keys[0] != client || keys[1] != gateway || keys[2].IsZero() {
		return
	}
	t.mu.Lock()
	t.pq = pqState{client: client, gateway: gateway, psk: keys[2], inUse: true}
	t.mu.Unlock()
}

// savePQ keeps st for the next connection; without a state directory it
// is not kept.
func (t *Tunnel) savePQ(st pqState) {
	if t.cfg.Dir == "" {
		return
	}
	line := st.client.Base64() + " " + st.gateway.Base64() + " " + st.psk.Base64() + "\n"
	if err := writeFileAtomic(filepath.Join(t.cfg.Dir, pqFile), []byte(line)); err != nil {
		t.log.Warn("saving the post-quantum key failed", "err", err)
	}
}

// pskFor is the pre-shared key to configure for the gateway peer key:
// the agreed one while it is in use with that gateway, else none.
func (t *Tunnel) pskFor(key wg.Key) *wg.Key {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pq.inUse && t.pq.gateway == key {
		psk := t.pq.psk
		return &psk
	}
	return nil
}

// quantumResistant reports whether the device's handshakes with peer
// mix in a pre-shared key agreed by ML-KEM. Call with t.mu held.
func (t *Tunnel) quantumResistant(peer wg.Key) bool {
	return t.pq.inUse && t.pq.gateway == peer && !t.pq.psk.IsZero()
}

// connectPQ is connect, and, if the saved pre-shared key got no
// handshake, connect again without it: the gateway may have lost it.
func (t *Tunnel) connectPQ(ctx context.Context) error {
	err := t.connect(ctx)
	if err == nil || !errors.Is(err, ErrNoHandshake) || t.pskFor(t.peer) == nil {
		return err
	}
	t.log.Info("no handshake with the saved post-quantum key; trying without it")
	if err := t.usePSK(false); err != nil {
		return err
	}
	return t.connect(ctx)
}

// renewPQ agrees a new pre-shared key with the gateway over the tunnel,
// installs it and waits for a handshake with it. With NoPQ it does
// nothing. A gateway that does not offer the exchange leaves the tunnel
// as it is, without a pre-shared key.
func (t *Tunnel) renewPQ(ctx context.Context) error {
	if t.cfg.NoPQ {
		return nil
	}
	priv, err := wg.ParseKey(t.cfg.State.PrivateKey)
	if err != nil {
		return err
	}
	client := priv.Public()
	t.mu.Lock()
	gw, srv := t.peer, t.server
	t.mu.Unlock()
	dst, err := parseAddr(srv.TunnelIPv4)
	if err != nil {
		if dst, err = parseAddr(srv.TunnelIPv6); err != nil {
			return errors.New("the gateway has no tunnel address")
		}
	}
	rctx, cancel := context.WithTimeout(ctx, pqTimeout)
	psk, err := pq.Request(rctx, t.pqDial, dst, client, gw)
	cancel()
	if err != nil {
		return err
	}
	st := pqState{client: client, gateway: gw, psk: psk, inUse: true}
	t.opMu.Lock()
	select {
	case <-t.closed:
		t.opMu.Unlock()
		return errors.New("tunnel closed")
	default:
	}
	t.mu.Lock()
	if t.peer != gw {
		t.mu.Unlock()
		t.opMu.Unlock()
		return errors.New("the gateway changed during the post-quantum key exchange")
	}
	t.pq = st
	t.mu.Unlock()
	err = t.dev.SetPresharedKey(gw, psk)
	t.opMu.Unlock()
	if err != nil {
		return err
	}
	t.savePQ(st)
	return t.awaitHandshakeSince(ctx, time.Now())
}

// pqDial opens the exchange's connection through the tunnel: in proxy
// mode on the userspace stack; in tun mode the routes lead there.
func (t *Tunnel) pqDial(ctx context.Context, network, address string) (net.Conn, error) {
	if t.proxy != nil {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return nil, err
		}
		return t.proxy.dialer.dial(ctx, network, ap.String())
	}
	var d net.Dialer
	return d.DialContext(ctx, network, address)
}

// usePSK turns the agreed pre-shared key on or off for the current
// gateway and starts a handshake: Watch alternates when no handshake
// comes, since only one of the two can match what the gateway holds.
func (t *Tunnel) usePSK(on bool) error {
	t.mu.Lock()
	peer, st := t.peer, t.pq
	if on && (st.gateway != peer || st.psk.IsZero()) {
		t.mu.Unlock()
		return nil
	}
	t.pq.inUse = on
	t.mu.Unlock()
	k := wg.Key{}
	if on {
		k = st.psk
	}
	if err := t.dev.SetPresharedKey(peer, k); err != nil {
		return err
	}
	t.dev.Rehandshake(peer)
	return nil
}

// togglePSK is usePSK of the opposite, when there is a key to toggle:
// it reports whether the key is now in use, and whether it toggled.
func (t *Tunnel) togglePSK() (on, toggled bool) {
	t.mu.Lock()
	peer, st := t.peer, t.pq
	t.mu.Unlock()
	if st.gateway != peer || st.psk.IsZero() {
		return false, false
	}
	if err := t.usePSK(!st.inUse); err != nil {
		return st.inUse, false
	}
	return !st.inUse, true
}

// dropPSK stops using the pre-shared key (for a new device key, which the
// gateway holds none for) without starting a handshake. The caller holds
// opMu.
func (t *Tunnel) dropPSK() error {
	t.mu.Lock()
	peer, on := t.peer, t.pq.inUse
	t.pq.inUse = false
	t.mu.Unlock()
	if !on {
		return nil
	}
	return t.dev.SetPresharedKey(peer, wg.Key{})
}

// logPQ says whether the tunnel is quantum-resistant after an exchange
// that returned err; the error names no key.
func (t *Tunnel) logPQ(err error) {
	switch {
	case t.cfg.NoPQ:
	case err == nil:
		t.log.Info("post-quantum pre-shared key in place")
	case errors.Is(err, pq.ErrUnsupported):
		t.log.Info("the gateway offers no post-quantum key exchange; the tunnel is not quantum-resistant")
	default:
		t.log.Warn("post-quantum key exchange failed; the tunnel is not quantum-resistant", "err", err)
	}
}
