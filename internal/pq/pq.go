// Package pq is how a client and a gateway agree, inside a WireGuard
// tunnel that is already up, on a post-quantum pre-shared key for that
// tunnel: the client sends an ML-KEM-768 encapsulation key to the
// gateway's tunnel address, the gateway answers with a ciphertext, and
// both derive the same 32-byte key, which each installs as the peer's
// WireGuard pre-shared key. A recorded tunnel then stays secret even to
// someone who later breaks X25519, as Mullvad's quantum-resistant
// tunnels do.
//
// The request is one HTTP POST of the raw encapsulation key to
// http://TUNNEL-ADDRESS:Port/Path; the answer is the raw ciphertext. The
// gateway knows the client by the request's source address, which
// WireGuard only lets through from the peer that owns it, so the exchange
// needs no credential of its own.
package pq

import (
	"bytes"
	"context"
	"crypto/hkdf"
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

// Path is the exchange's HTTP path.
const Path = "/v1/psk"

// ErrUnsupported is returned (wrapped) by Request when the gateway does
// not offer the exchange: nothing listens, or it answers 404.
var ErrUnsupported = errors.New("the gateway offers no post-quantum key exchange")

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
// and the pre-shared key to install for it.
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

// Request is the client's half: it asks the gateway at its tunnel address
// addr, over connections dial opens through the tunnel, for a new
// pre-shared key between the client's WireGuard key client and the
// gateway's, and returns it. The gateway has installed it for the client
// before it answers.
func Request(ctx context.Context, dial Dialer, addr netip.Addr, client, gateway wg.Key) (wg.Key, error) {
	dk, err := mlkem.GenerateKey768()
	if err != nil {
		return wg.Key{}, fmt.Errorf("generating an ML-KEM key: %w", err)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true, Proxy: nil}}
	url := "http://" + net.JoinHostPort(addr.String(), strconv.Itoa(Port)) + Path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(dk.EncapsulationKey().Bytes()))
	if err != nil {
		return wg.Key{}, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := hc.Do(req)
	if err != nil {
		// The URL holds only the gateway's tunnel address, but keep the
		// error to its kind all the same.
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return wg.Key{}, fmt.Errorf("%w (no answer)", ErrUnsupported)
		}
		return wg.Key{}, fmt.Errorf("%w (connection failed)", ErrUnsupported)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return wg.Key{}, ErrUnsupported
	case resp.StatusCode != http.StatusOK:
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

// Installer installs the pre-shared key for the gateway's peer at a
// tunnel address; the gateway implements it.
type Installer interface {
	// Install finds the peer that owns the tunnel address src; if there
	// is one, it calls respond with that peer's WireGuard key, installs
	// the key respond returns for that peer alone, and reports true.
	Install(src netip.Addr, respond func(client wg.Key) (wg.Key, error)) (bool, error)
}

// Handler is the gateway's HTTP side of the exchange: gateway is the
// gateway's own WireGuard public key.
func Handler(gateway wg.Key, in Installer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+Path, func(w http.ResponseWriter, r *http.Request) {
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		ek, err := io.ReadAll(io.LimitReader(r.Body, mlkem.EncapsulationKeySize768+1))
		if err != nil || len(ek) != mlkem.EncapsulationKeySize768 {
			http.Error(w, "want an ML-KEM-768 encapsulation key", http.StatusBadRequest)
			return
		}
		var ct []byte
		ok, err := in.Install(ap.Addr().Unmap(), func(client wg.Key) (wg.Key, error) {
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
	return mux
}

// Server returns an HTTP server of h with short timeouts, the exchange
// being one small request, and no error log: net/http's name the peer's
// address.
func Server(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 20 * time.Second,
		WriteTimeout: 20 * time.Second, IdleTimeout: 30 * time.Second, MaxHeaderBytes: 8 << 10,
		ErrorLog: log.New(io.Discard, "", 0)}
}
