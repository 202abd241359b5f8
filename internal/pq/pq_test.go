package pq

import (
	"bytes"
	"context"
	"crypto/mlkem"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"veil/internal/wg"
)

// installer knows one peer, at one address, and records what it holds
// pending and what it installed.
type installer struct {
	addr    netip.Addr
	key     wg.Key
	pending map[wg.Key]wg.Key
	set     map[wg.Key]wg.Key
}

func newInstaller(addr netip.Addr, key wg.Key) *installer {
	return &installer{addr: addr, key: key, pending: map[wg.Key]wg.Key{}, set: map[wg.Key]wg.Key{}}
}

func (in *installer) Offer(src netip.Addr, respond func(wg.Key) (wg.Key, error)) (bool, error) {
	if src != in.addr {
		return false, nil
	}
	psk, err := respond(in.key)
	if err != nil {
		return false, err
	}
	in.pending[in.key] = psk
	return true, nil
}

func (in *installer) Confirm(src netip.Addr, proves func(wg.Key) bool) (bool, error) {
	psk, ok := in.pending[in.key]
	if src != in.addr || !ok || !proves(psk) {
		return false, nil
	}
	delete(in.pending, in.key)
	in.set[in.key] = psk
	return true, nil
}

func key(t *testing.T) wg.Key {
	t.Helper()
	k, err := wg.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k.Public()
}

func TestExchange(t *testing.T) {
	client, gateway := key(t), key(t)
	for _, tc := range []struct {
		name   string
		peer   netip.Addr // the address the installer knows
		wantOK bool
	}{
		{"own address", netip.MustParseAddr("127.0.0.1"), true},
		{"another peer's address", netip.MustParseAddr("10.64.0.9"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := newInstaller(tc.peer, client)
			srv := httptest.NewServer(Handler(gateway, in))
			defer srv.Close()
			ap := netip.MustParseAddrPort(strings.TrimPrefix(srv.URL, "http://"))
			// Request dials Port; send it to the test server instead.
			dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, ap.String())
			}
			psk, err := Request(context.Background(), dial, ap.Addr(), client, gateway)
			if !tc.wantOK {
				if err == nil || len(in.set) != 0 {
					t.Fatalf("exchange from an unknown address: %v, set %d keys", err, len(in.set))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(in.set) != 0 || in.pending[client] != psk {
				t.Fatal("the first step installed the key, or keeps another pending")
			}
			if err := Confirm(context.Background(), dial, ap.Addr(), psk); err != nil {
				t.Fatalf("confirm: %v", err)
			}
			if psk.IsZero() || in.set[client] != psk || len(in.pending) != 0 {
				t.Fatal("the two halves derived different keys")
			}
			// Another pair of WireGuard keys derives another key from
			// the same secret.
			if other, _ := derive(bytes.Repeat([]byte{1}, 32), client, gateway); other == mustDerive(t, bytes.Repeat([]byte{1}, 32), gateway, client) {
				t.Error("the key does not depend on which WireGuard keys it is for")
			}
		})
	}
}

func mustDerive(t *testing.T, secret []byte, a, b wg.Key) wg.Key {
	t.Helper()
	k, err := derive(secret, a, b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestHandlerRefuses(t *testing.T) {
	in := newInstaller(netip.MustParseAddr("127.0.0.1"), key(t))
	h := Handler(key(t), in)
	for _, tc := range []struct {
		name, method, path string
		body               []byte
		want               int
	}{
		{"short key", http.MethodPost, Path, make([]byte, 100), http.StatusBadRequest},
		{"not a key", http.MethodPost, Path, bytes.Repeat([]byte{0xff}, 1184), http.StatusBadRequest},
		{"GET", http.MethodGet, Path, nil, http.StatusMethodNotAllowed},
		{"other path", http.MethodPost, "/", nil, http.StatusNotFound},
		{"confirm, short proof", http.MethodPost, ConfirmPath, make([]byte, 16), http.StatusBadRequest},
		{"confirm, nothing pending", http.MethodPost, ConfirmPath, make([]byte, 32), http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.path, bytes.NewReader(tc.body))
			r.RemoteAddr = "127.0.0.1:5000"
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want || len(in.set) != 0 {
				t.Errorf("status %d, want %d; keys set %d", w.Code, tc.want, len(in.set))
			}
		})
	}
}

// TestConfirmRefuses: a confirm installs the pending key only for the
// proof of that key, from the address of the peer it is pending for, and
// a newer request's key replaces an older one, whose confirm then fails.
func TestConfirmRefuses(t *testing.T) {
	client, gateway := key(t), key(t)
	in := newInstaller(netip.MustParseAddr("127.0.0.1"), client)
	h := Handler(gateway, in)
	offer := func() wg.Key {
		t.Helper()
		dk, err := mlkem.GenerateKey768()
		if err != nil {
			t.Fatal(err)
		}
		w := serve(t, h, "127.0.0.1:5000", Path, dk.EncapsulationKey().Bytes())
		if w.Code != http.StatusOK {
			t.Fatalf("request: %d", w.Code)
		}
		secret, err := dk.Decapsulate(w.Body.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		return mustDerive(t, secret, client, gateway)
	}
	older := offer()
	psk := offer()
	if in.pending[client] != psk {
		t.Fatal("a newer request did not replace the pending key")
	}
	for _, tc := range []struct {
		name, from string
		proof      []byte
	}{
		{"wrong proof", "127.0.0.1:5000", Proof(key(t))},
		{"the key itself", "127.0.0.1:5000", psk[:]},
		{"older request's key", "127.0.0.1:5000", Proof(older)},
		{"another peer's address", "10.64.0.9:5000", Proof(psk)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if w := serve(t, h, tc.from, ConfirmPath, tc.proof); w.Code != http.StatusForbidden {
				t.Errorf("status %d, want 403", w.Code)
			}
			if len(in.set) != 0 || in.pending[client] != psk {
				t.Error("a refused confirm installed a key or dropped the pending one")
			}
		})
	}
	if w := serve(t, h, "127.0.0.1:5000", ConfirmPath, Proof(psk)); w.Code != http.StatusOK || in.set[client] != psk {
		t.Fatalf("confirm with the right proof: %d", w.Code)
	}
	// Once installed it is no longer pending: a replay installs nothing.
	if w := serve(t, h, "127.0.0.1:5000", ConfirmPath, Proof(psk)); w.Code != http.StatusForbidden {
		t.Errorf("a second confirm: %d, want 403", w.Code)
	}
}

func serve(t *testing.T, h http.Handler, from, path string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	r.RemoteAddr = from
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}
