// Package pq is how a client and a gateway agree, inside a WireGuard
// tunnel that is already up, on a post-quantum pre-shared key for that
// tunnel: the client sends an ML-KEM-768 encapsulation key to the
// gateway's tunnel address, the gateway answers with a ciphertext, and
// both derive the same 32-byte key, which each installs as the peer's
// WireGuard pre-shared key. A recorded tunnel then stays secret even to
// someone who later breaks X25519, as Mullvad's quantum-resistant
// tunnels do.
//
// The exchange has two steps, so that a lost answer never leaves the two
// ends with different keys. Request POSTs the raw encapsulation key to
// http://TUNNEL-ADDRESS:Port/Path and reads the raw ciphertext; the
// gateway keeps the derived key pending, installing nothing. Confirm then
// POSTs Proof of that key to ConfirmPath; the gateway installs the
// pending key if the proof matches and answers 200. Until the client has
// that answer it keeps both its current key and the pending one, one of
// which (or none) is what the gateway holds. The gateway knows the
// client by the request's source address, which WireGuard only lets
// through from the peer that owns it, so the exchange needs no
// credential of its own.
package pq

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/mlkem"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"veil/internal/wg"
)

// Port is the TCP port of the exchange on the gateway's tunnel addresses.
const Port = 1337

// Path is the exchange's HTTP path; ConfirmPath is its second step's.
const (
	Path        = "/v1/psk"
	ConfirmPath = "/v1/psk/confirm"
)

// ErrUnsupported is returned (wrapped) by Request when the gateway does
// not offer the exchange: nothing listens, or it answers 404.
var ErrUnsupported = errors.New("the gateway offers no post-quantum key exchange")

// ErrRefused is returned (wrapped) by Confirm when the gateway answered
// that it installed nothing: it holds no such pending key for the peer.
var ErrRefused = errors.New("the gateway refused the post-quantum key")

// info binds the derived key to its use and to both WireGuard keys, so a
// secret agreed for one pair of peers is no key for another.
func info(client, gateway wg.Key) []byte {
	b := append([]byte("veil wireguard psk v1"), client[:]...)
	return append(b, gateway[:]...)
}

// derive turns the ML-KEM shared secret into the pre-shared key.
func derive(secret []byte, client, gateway wg.Key) (wg.Key, error) {
	k, err := hkdf.Key(sha256.New, secret, nil, string(info(client, gateway)), wg.KeyLen)
	if err != nil {
		return wg.Key{}, fmt.Errorf("deriving the pre-shared key: %w", err)
	}
	return wg.Key(k), nil
}

// Respond is the gateway's half: it encapsulates a fresh secret to the
// client's encapsulation key ek and returns the ciphertext for the client
// and the pre-shared key the client derives from it.
func Respond(ek []byte, client, gateway wg.Key) (ciphertext []byte, psk wg.Key, err error) {
	key, err := mlkem.NewEncapsulationKey768(ek)
	if err != nil {
		return nil, wg.Key{}, fmt.Errorf("reading the encapsulation key: %w", err)
	}
	secret, ct := key.Encapsulate()
	psk, err = derive(secret, client, gateway)
	if err != nil {
		return nil, wg.Key{}, err
	}
	return ct, psk, nil
}

// Dialer opens a TCP connection through the tunnel.
type Dialer func(ctx context.Context, network, address string) (net.Conn, error)

// Request is the client's first step: it asks the gateway at its tunnel
// address addr, over connections dial opens through the tunnel, for a new
// pre-shared key between the client's WireGuard key client and the
// gateway's, and returns it. The gateway holds it pending, installed only
// once Confirm has its answer.
func Request(ctx context.Context, dial Dialer, addr netip.Addr, client, gateway wg.Key) (wg.Key, error) {
	dk, err := mlkem.GenerateKey768()
	if err != nil {
		return wg.Key{}, fmt.Errorf("generating an ML-KEM key: %w", err)
	}
	resp, err := post(ctx, dial, addr, Path, dk.EncapsulationKey().Bytes())
	if err != nil {
		return wg.Key{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return wg.Key{}, fmt.Errorf("post-quantum key exchange refused: %s", resp.Status)
	}
	ct, err := io.ReadAll(io.LimitReader(resp.Body, mlkem.CiphertextSize768+1))
	if err != nil {
		return wg.Key{}, fmt.Errorf("reading the gateway's ciphertext: %w", err)
	}
	if len(ct) != mlkem.CiphertextSize768 {
		return wg.Key{}, errors.New("the gateway's ciphertext has the wrong size")
	}
	secret, err := dk.Decapsulate(ct)
	if err != nil {
		return wg.Key{}, fmt.Errorf("decapsulating: %w", err)
	}
	return derive(secret, client, gateway)
}

// Confirm is the client's second step: it asks the gateway at addr to
// install psk, the key Request returned. nil means the gateway has
// installed it; an error wrapping ErrRefused, that it installed nothing;
// any other error leaves it unknown which of the two the gateway holds.
func Confirm(ctx context.Context, dial Dialer, addr netip.Addr, psk wg.Key) error {
	resp, err := post(ctx, dial, addr, ConfirmPath, Proof(psk))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return fmt.Errorf("%w: %s", ErrRefused, resp.Status)
	}
	return fmt.Errorf("confirming the post-quantum key: %s", resp.Status)
}

// Proof is what Confirm sends for psk: it shows the gateway that the
// client derived the same key, and tells nothing of the key.
func Proof(psk wg.Key) []byte {
	m := hmac.New(sha256.New, psk[:])
	m.Write([]byte("veil wireguard psk confirm v1"))
	return m.Sum(nil)
}

// post sends body to the gateway's exchange at addr and path.
func post(ctx context.Context, dial Dialer, addr netip.Addr, path string, body []byte) (*http.Response, error) {
	hc := &http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true, Proxy: nil}}
	url := "http://" + net.JoinHostPort(addr.String(), strconv.Itoa(Port)) + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := hc.Do(req)
	if err != nil {
		// The URL holds only the gateway's tunnel address, but keep the
		// error to its kind all the same.
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, fmt.Errorf("%w (no answer)", ErrUnsupported)
		}
		return nil, fmt.Errorf("%w (connection failed)", ErrUnsupported)
	}
	if resp.StatusCode == http.StatusNotFound {
		resp.Body.Close()
		return nil, ErrUnsupported
	}
	return resp, nil
}

// Installer keeps the gateway's pending keys and installs them; the
// gateway implements it. Both methods act on the peer that owns the
// tunnel address src, and report false if no peer does.
type Installer interface {
	// Offer calls respond with the peer's WireGuard key and keeps the key
	// respond returns as the peer's pending one, in place of any earlier.
	// It installs nothing.
	Offer(src netip.Addr, respond func(client wg.Key) (wg.Key, error)) (bool, error)
	// Confirm installs the peer's pending key, for that peer alone, if
	// the peer has one and proves reports true of it, and then forgets
	// it as pending; it reports false, installing nothing, otherwise.
	Confirm(src netip.Addr, proves func(pending wg.Key) bool) (bool, error)
}

// Handler is the gateway's HTTP side of the exchange: gateway is the
// gateway's own WireGuard public key.
func Handler(gateway wg.Key, in Installer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+Path, func(w http.ResponseWriter, r *http.Request) {
		src, ok := source(w, r)
		if !ok {
			return
		}
		ek, err := io.ReadAll(io.LimitReader(r.Body, mlkem.EncapsulationKeySize768+1))
		if err != nil || len(ek) != mlkem.EncapsulationKeySize768 {
			http.Error(w, "want an ML-KEM-768 encapsulation key", http.StatusBadRequest)
			return
		}
		var ct []byte
		ok, err = in.Offer(src, func(client wg.Key) (wg.Key, error) {
			c, psk, err := Respond(ek, client, gateway)
			ct = c
			return psk, err
		})
		switch {
		case err != nil:
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		case !ok:
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(ct)
	})
	mux.HandleFunc("POST "+ConfirmPath, func(w http.ResponseWriter, r *http.Request) {
		src, ok := source(w, r)
		if !ok {
			return
		}
		proof, err := io.ReadAll(io.LimitReader(r.Body, sha256.Size+1))
		if err != nil || len(proof) != sha256.Size {
			http.Error(w, "want a proof of the key", http.StatusBadRequest)
			return
		}
		ok, err = in.Confirm(src, func(pending wg.Key) bool { return hmac.Equal(proof, Proof(pending)) })
		switch {
		case err != nil:
			http.Error(w, "installing the key failed", http.StatusInternalServerError)
		case !ok:
			http.Error(w, "no such pending key", http.StatusForbidden)
		default:
			w.Write([]byte("ok\n"))
		}
	})
	return mux
}

// source is the request's tunnel source address; without one it answers
// 403 and reports false.
func source(w http.ResponseWriter, r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		http.Error(w, "forbidden", http.StatusForbidden)
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// Server returns an HTTP server of h with short timeouts, the exchange
// being one small request, and no error log: net/http's name the peer's
// address.
func Server(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 20 * time.Second,
		WriteTimeout: 20 * time.Second, IdleTimeout: 30 * time.Second, MaxHeaderBytes: 8 << 10,
		ErrorLog: log.New(io.Discard, "", 0)}
}
