package pq

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"veil/internal/wg"
)

// installer knows one peer, at one address, and records what it set.
type installer struct {
	addr netip.Addr
	key  wg.Key
	set  map[wg.Key]wg.Key
}

func (in *installer) Install(src netip.Addr, respond func(wg.Key) (wg.Key, error)) (bool, error) {
	if src != in.addr {
		return false, nil
	}
	psk, err := respond(in.key)
	if err != nil {
		return false, err
	}
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
			in := &installer{addr: tc.peer, key: client, set: map[wg.Key]wg.Key{}}
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
			if psk.IsZero() || in.set[client] != psk {
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
	in := &installer{addr: netip.MustParseAddr("127.0.0.1"), key: key(t), set: map[wg.Key]wg.Key{}}
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
