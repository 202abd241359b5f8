package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"veil/internal/wg"
)

// DefaultKeyRotation is how long a device key is used before the client
// replaces it (config key_rotation; 0 turns rotation off).
const DefaultKeyRotation = 7 * 24 * time.Hour

// rehandshakeEvery is how often RotateKey repeats its handshake with the
// new key until the gateway answers: the gateway learns the key from its
// next peer-map sync, which normally comes within milliseconds.
const rehandshakeEvery = 250 * time.Millisecond

// RotateKey replaces the device's WireGuard key without taking the
// tunnel down: a new key pair is made here, the control plane swaps the
// public key in the peer map (same device, same addresses, so
// connections inside the tunnel survive), wireguard-go switches to the
// new private key in place, and the handshake is repeated until the
// gateway, which follows the peer map, accepts it. Packets sent between
// the gateway dropping the old key and the new handshake are lost: at
// most one handshake's worth. The new key is saved in dir first and the
// old one put back if the control plane refuses the new.
func (t *Tunnel) RotateKey(ctx context.Context, dir string) error {
	st := t.cfg.State
	key, err := wg.GenerateKey()
	if err != nil {
		return err
	}
	api, done, err := t.controlAPI(ctx, dir)
	if err != nil {
		return fmt.Errorf("rotating the device key: %w", err)
	}
	oldKey, oldAt := st.PrivateKey, st.KeyCreated
	st.PrivateKey, st.KeyCreated = key.Base64(), time.Now().UTC()
	if err := st.Save(dir); err != nil {
		done()
		st.PrivateKey, st.KeyCreated = oldKey, oldAt
		return fmt.Errorf("rotating the device key: %w", err)
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	d, err := api.RekeyDevice(rctx, st.DeviceID, key.Public().Base64())
	cancel()
	done()
	if err != nil || d.PublicKey != key.Public().Base64() {
		st.PrivateKey, st.KeyCreated = oldKey, oldAt
		if serr := st.Save(dir); serr != nil {
			return fmt.Errorf("rotating the device key: %w; restoring the old key: %w", err, serr)
		}
		if err == nil {
			err = errors.New("the control plane kept the old key")
		}
		return fmt.Errorf("rotating the device key: %w", err)
	}
	t.opMu.Lock()
	select {
	case <-t.closed:
		t.opMu.Unlock()
		return errors.New("rotating the device key: the tunnel is closed")
	default:
	}
	switched := time.Now()
	// The gateway holds no pre-shared key for the new key: handshake
	// without, then agree a new one.
	err = errors.Join(t.dropPSK(), t.dev.SetPrivateKey(key))
	t.opMu.Unlock()
	if err != nil {
		return err
	}
	if err := t.awaitHandshakeSince(ctx, switched); err != nil {
		return err
	}
	if err := t.rehop(ctx); err != nil {
		return err
	}
	t.logPQ(t.renewPQ(ctx))
	return nil
}

// controlAPI returns an API client for the saved account. In tun mode
// it goes by the kill switch's control-plane exception, as a reconnect
// does (the control plane may be reachable only from outside the
// tunnel), open until done is called.
func (t *Tunnel) controlAPI(ctx context.Context, dir string) (api *API, done func(), err error) {
	st := t.cfg.State
	done = func() {}
	if t.tun != nil {
		st.HTTP = t.tun.apiHTTP()
		t.opMu.Lock()
		err := t.tun.allowAPI(true)
		t.opMu.Unlock()
		if err != nil {
			return nil, nil, err
		}
		done = func() {
			t.opMu.Lock()
			if err := t.tun.allowAPI(false); err != nil {
				t.log.Warn("closing the kill switch's control plane exception failed", "err", err)
			}
			t.opMu.Unlock()
		}
	}
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if api, err = st.API(actx, dir); err != nil {
		done()
		return nil, nil, err
	}
	return api, done, nil
}

// awaitHandshakeSince repeats the handshake with the gateway until one
// newer than since completes, or the handshake timeout passes.
func (t *Tunnel) awaitHandshakeSince(ctx context.Context, since time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.HandshakeTimeout)
	defer cancel()
	t.mu.Lock()
	peer := t.peer
	t.mu.Unlock()
	tick := time.NewTicker(rehandshakeEvery)
	defer tick.Stop()
	for {
		t.dev.Rehandshake(peer)
		for range 5 {
			if st := t.Status(); !st.LastHandshake.Before(since) {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%w with the new key within %s", ErrNoHandshake, t.cfg.HandshakeTimeout)
			case <-time.After(rehandshakeEvery / 5):
			}
		}
	}
}

// rotateKeys replaces the device key every cfg.KeyRotation, counted from
// when the saved key was made, until ctx ends. A failed rotation is
// tried again after a minute, or after the interval if that is shorter;
// the tunnel keeps the old key meanwhile.
func (t *Tunnel) rotateKeys(ctx context.Context, dir string) {
	every := t.cfg.KeyRotation
	if every <= 0 {
		return
	}
	for {
		made := t.cfg.State.KeyCreated
		if made.IsZero() {
			made = time.Now()
		}
		wait := time.Until(made.Add(every))
		select {
		case <-ctx.Done():
			return
		case <-t.closed:
			return
		case <-time.After(wait):
		}
		if err := t.RotateKey(ctx, dir); err != nil {
			t.log.Warn("device key rotation failed; the old key stays", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(min(time.Minute, every)):
			}
			continue
		}
		t.log.Info("device key rotated")
	}
}
