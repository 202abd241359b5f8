package client

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"veil/internal/pq"
	"veil/internal/wg"
)

// pqFile, in the state directory, keeps the post-quantum pre-shared keys
// agreed with a gateway (mode 0600, like the device key), so that a new
// `veil connect` reaches a gateway that still holds one: the line is the
// client's and the gateway's WireGuard keys, the current pre-shared key
// (the zero key for none) and, while one is unconfirmed, the pending one.
const pqFile = "pq-psk"

// pqTimeout bounds one exchange with the gateway. A gateway without the
// exchange refuses the connection at once (netstack) or drops it (tun).
const pqTimeout = 10 * time.Second

// pqState is the tunnel's post-quantum pre-shared keys for one pair of
// WireGuard keys: the current one, which the gateway confirmed; the
// pending one, which it offered and may or may not have installed; and
// the one the device uses now (zero for none). The gateway holds one of
// the three, and only the client's handshake tells which.
type pqState struct {
	client, gateway wg.Key
	current         wg.Key
	pending         wg.Key
	using           wg.Key
	// tried are the candidates cyclePSK tried since the last handshake,
	// or since it went back to the first.
	tried []wg.Key
}

// candidates are the pre-shared keys the gateway may hold, in the order
// to try them: the pending one (the gateway installs it last), the
// current one, then none.
func (st pqState) candidates() []wg.Key {
	var c []wg.Key
	for _, k := range []wg.Key{st.pending, st.current} {
		if !k.IsZero() && !slices.Contains(c, k) {
			c = append(c, k)
		}
	}
	return append(c, wg.Key{})
}

// loadPQ takes the saved pre-shared keys if they were agreed between
// client and gateway: the first handshake uses the first candidate.
func (t *Tunnel) loadPQ(client, gateway wg.Key) {
	if t.cfg.NoPQ || t.cfg.Dir == "" {
		return
	}
	b, err := os.ReadFile(filepath.Join(t.cfg.Dir, pqFile))
	if err != nil {
		return
	}
	f := strings.Fields(string(b))
	if len(f) != 3 && len(f) != 4 {
		return
	}
	keys := make([]wg.Key, 4)
	for i, s := range f {
		if keys[i], err = wg.ParseKey(s); err != nil {
			return
		}
	}
	if keys[0] != client || keys[1] != gateway {
		return
	}
	st := pqState{client: client, gateway: gateway, current: keys[2], pending: keys[3]}
	st.using = st.candidates()[0]
	t.mu.Lock()
	t.pq = st
	t.mu.Unlock()
}

// savePQ keeps st for the next connection; without a state directory it
// is not kept. The write is atomic: a killed client keeps the old line or
// the new one.
func (t *Tunnel) savePQ(st pqState) {
	if t.cfg.Dir == "" {
		return
	}
	line := st.client.Base64() + " " + st.gateway.Base64() + " " + st.current.Base64()
	if !st.pending.IsZero() {
		line += " " + st.pending.Base64()
	}
	if err := writeFileAtomic(filepath.Join(t.cfg.Dir, pqFile), []byte(line+"\n")); err != nil {
		t.log.Warn("saving the post-quantum key failed", "err", err)
	}
}

// pskFor is the pre-shared key to configure for the gateway peer key:
// the one in use with that gateway, else none.
func (t *Tunnel) pskFor(key wg.Key) *wg.Key {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pq.gateway == key && !t.pq.using.IsZero() {
		psk := t.pq.using
		return &psk
	}
	return nil
}

// quantumResistant reports whether the device's handshakes with peer
// mix in a pre-shared key agreed by ML-KEM. Call with t.mu held.
func (t *Tunnel) quantumResistant(peer wg.Key) bool {
	return t.pq.gateway == peer && !t.pq.using.IsZero()
}

// connectPQ is connect with each pre-shared key the gateway may hold in
// turn, until one gets a handshake.
func (t *Tunnel) connectPQ(ctx context.Context) error {
	cands, i := t.pskCandidates()
	for {
		err := t.connect(ctx)
		if err == nil {
			t.settlePQ()
			return nil
		}
		if i++; !errors.Is(err, ErrNoHandshake) || i >= len(cands) {
			return err
		}
		t.log.Info("no handshake with this post-quantum key; trying the next one the gateway may hold")
		if err := t.usePSK(cands[i]); err != nil {
			return err
		}
	}
}

// pskCandidates are the pre-shared keys the current gateway may hold, in
// order, and the index of the one in use.
func (t *Tunnel) pskCandidates() ([]wg.Key, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pq.gateway != t.peer {
		return []wg.Key{{}}, 0
	}
	c := t.pq.candidates()
	return c, max(slices.Index(c, t.pq.using), 0)
}

// settlePQ records what a handshake with the key in use showed: if it is
// the pending key, the gateway installed it, and it becomes the current
// one. A handshake with the current key or none leaves the pending key
// kept, since a confirm still on its way could install it; the next
// exchange replaces it.
func (t *Tunnel) settlePQ() {
	t.opMu.Lock()
	defer t.opMu.Unlock()
	t.mu.Lock()
	t.pq.tried = nil
	st := t.pq
	if st.gateway != t.peer || st.pending.IsZero() || st.using != st.pending {
		t.mu.Unlock()
		return
	}
	st.current, st.pending = st.pending, wg.Key{}
	t.pq = st
	t.mu.Unlock()
	t.savePQ(st)
}

// renewPQ agrees a new pre-shared key with the gateway over the tunnel,
// installs it and waits for a handshake with it. With NoPQ it does
// nothing. A gateway that does not offer the exchange leaves the tunnel
// as it is.
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
	// The gateway holds psk pending: keep it so, next to the current key,
	// before asking it to install it.
	err = t.updatePQ(client, gw, func(st *pqState) { st.pending = psk })
	if err != nil {
		return err
	}
	rctx, cancel = context.WithTimeout(ctx, pqTimeout)
	err = pq.Confirm(rctx, t.pqDial, dst, psk)
	cancel()
	switch {
	case errors.Is(err, pq.ErrRefused):
		// It installed nothing, and no longer holds psk pending.
		return errors.Join(err, t.updatePQ(client, gw, func(st *pqState) { st.pending = wg.Key{} }))
	case err != nil:
		// It may have installed psk or not: find out by handshaking.
		t.log.Info("no answer to the post-quantum key's confirmation; finding which key the gateway holds")
		if rerr := t.resolvePQ(ctx); rerr != nil {
			return errors.Join(err, rerr)
		}
		if t.Status().QuantumResistant {
			return nil
		}
		return err
	}
	since := time.Now()
	if err := t.updatePQ(client, gw, func(st *pqState) { st.current, st.pending, st.using = psk, wg.Key{}, psk }); err != nil {
		return err
	}
	return t.awaitHandshakeSince(ctx, since)
}

// updatePQ changes the pre-shared keys agreed between client and the
// gateway gw with change, starting from none if those were for another
// pair, saves them and gives the device the one in use.
func (t *Tunnel) updatePQ(client, gw wg.Key, change func(*pqState)) error {
	t.opMu.Lock()
	defer t.opMu.Unlock()
	select {
	case <-t.closed:
		return errors.New("tunnel closed")
	default:
	}
	t.mu.Lock()
	if t.peer != gw {
		t.mu.Unlock()
		return errors.New("the gateway changed during the post-quantum key exchange")
	}
	st := t.pq
	if st.client != client || st.gateway != gw {
		// The device uses no key with this pair (pskFor, dropPSK).
		st = pqState{client: client, gateway: gw}
	}
	change(&st)
	t.pq = st
	t.mu.Unlock()
	t.savePQ(st)
	return t.dev.SetPresharedKey(gw, st.using)
}

// resolvePQ tries each pre-shared key the gateway may hold until one gets
// a handshake, and settles on it; if none does, Watch goes on trying.
func (t *Tunnel) resolvePQ(ctx context.Context) error {
	t.mu.Lock()
	cands := t.pq.candidates()
	t.mu.Unlock()
	var err error
	for _, k := range cands {
		since := time.Now()
		if err = t.usePSK(k); err != nil {
			return err
		}
		if err = t.awaitHandshakeSince(ctx, since); err == nil {
			t.settlePQ()
			return nil
		}
	}
	return err
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

// usePSK makes the device use psk (the zero key for none) with the
// current gateway and starts a handshake: Watch goes through the
// candidates when no handshake comes, since only one can match what the
// gateway holds. A key agreed with no other gateway is not used.
func (t *Tunnel) usePSK(psk wg.Key) error {
	t.mu.Lock()
	peer := t.peer
	if !psk.IsZero() && t.pq.gateway != peer {
		t.mu.Unlock()
		return nil
	}
	t.pq.using = psk
	t.mu.Unlock()
	if err := t.dev.SetPresharedKey(peer, psk); err != nil {
		return err
	}
	t.dev.Rehandshake(peer)
	return nil
}

// cyclePSK, for Watch when no handshake came, makes the device use the
// first candidate not tried since the last handshake, in candidates'
// order; once all were, it goes back to the first. It reports whether
// the device now uses a key, whether it went back (all were tried with
// this transport) and whether there was another candidate at all.
func (t *Tunnel) cyclePSK() (on, wrapped, changed bool) {
	t.mu.Lock()
	cands := t.pq.candidates()
	if t.pq.gateway != t.peer || len(cands) < 2 {
		t.mu.Unlock()
		return false, false, false
	}
	if !slices.Contains(t.pq.tried, t.pq.using) {
		t.pq.tried = append(t.pq.tried, t.pq.using)
	}
	i := slices.IndexFunc(cands, func(k wg.Key) bool { return !slices.Contains(t.pq.tried, k) })
	if wrapped = i < 0; wrapped {
		i, t.pq.tried = 0, nil
	}
	t.mu.Unlock()
	if err := t.usePSK(cands[i]); err != nil {
		return false, false, false
	}
	return !cands[i].IsZero(), wrapped, true
}

// dropPSK stops using the pre-shared key (for a new device key, which the
// gateway holds none for) without starting a handshake. The caller holds
// opMu.
func (t *Tunnel) dropPSK() error {
	t.mu.Lock()
	peer, on := t.peer, !t.pq.using.IsZero()
	t.pq.using = wg.Key{}
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
