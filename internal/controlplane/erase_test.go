package controlplane_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"veil/internal/apitypes"
	"veil/internal/site/sitetest"
	"veil/internal/store"
	"veil/internal/store/storetest"
)

// The two ways a person erases an account: the API and the /account page.
var erasers = map[string]func(t *testing.T, e *env, code, tok string){
	"api": func(t *testing.T, e *env, _, tok string) {
		if st := e.call(t, "DELETE", "/api/v1/account", tok, nil, nil); st != 204 {
			t.Fatalf("erase: %d", st)
		}
	},
	"page": func(t *testing.T, e *env, code, _ string) {
		v := sitetest.NewBrowser(t, e.url)
		for _, f := range []struct{ path, key, value string }{{"/account/login", "access_code", code}, {"/account/erase", "confirm", "yes"}} {
			if st, _ := v.Post(f.path, url.Values{f.key: {f.value}}); st != 200 {
				t.Fatalf("POST %s: %d", f.path, st)
			}
		}
	},
}

// TestEraseLeavesNothing erases an account through the API and the
// account page and then finds none of its values in any file of the
// database; its device keys stay only in their tombstones until the
// gateway has synced their removal.
func TestEraseLeavesNothing(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, newDB func(testing.TB) string) {
		for way, erase := range erasers {
			t.Run(way, func(t *testing.T) { testEraseLeavesNothing(t, newDB, erase) })
		}
	})
}

func testEraseLeavesNothing(t *testing.T, newDB func(testing.TB) string, erase func(t *testing.T, e *env, code, tok string)) {
	dsn := newDB(t)
	st, err := store.Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := newEnv(t, st)
	gw := e.addGateway(t, "gw1")
	for range 10 { // accounts that stay, on the same pages
		tok := e.login(t, e.newAccount(t, 30))
		e.call(t, "POST", "/api/v1/devices", tok, apitypes.DeviceRequest{PublicKey: newPub(t)}, nil)
	}
	code := e.newAccount(t, 30)
	tok := e.login(t, code)
	tag := fmt.Sprint(time.Now().UnixNano())
	email := "erase-" + tag + "@example.org"
	if st := e.call(t, "PATCH", "/api/v1/account", tok, apitypes.AccountPatch{Email: &email}, nil); st != 200 {
		t.Fatalf("patch: %d", st)
	}
	secrets := map[string][]byte{"email": []byte(email)}
	for i := range 2 {
		key := newPub(t)
		if st := e.call(t, "POST", "/api/v1/devices", tok, apitypes.DeviceRequest{PublicKey: key, Name: "phone"}, nil); st != 201 {
			t.Fatalf("device: %d", st)
		}
		raw, _ := base64.StdEncoding.DecodeString(key)
		secrets[fmt.Sprintf("device key %d", i)], secrets[fmt.Sprintf("device key %d (raw)", i)] = []byte(key), raw
	}
	subject, text := "subject-"+tag, "ticket-text-"+tag
	if st := e.call(t, "POST", "/api/v1/support/tickets", tok, apitypes.TicketRequest{Subject: subject, Message: text, Email: email}, nil); st != 201 {
		t.Fatalf("ticket: %d", st)
	}
	secrets["ticket subject"], secrets["ticket text"] = []byte(subject), []byte(text)
	as, err := st.AccountsByEmail(t.Context(), email)
	if err != nil || len(as) != 1 {
		t.Fatalf("AccountsByEmail = %v, %v", as, err)
	}
	secrets["access-code hash"] = as[0].CodeHash
	m := pollPeers(t, e.url, gw, 0, 0)
	pollPeers(t, e.url, gw, m.Version, 0) // the gateway holds the map
	found := strings.Join(storetest.Leftovers(t, dsn, secrets), "\n")
	for name := range secrets {
		if !strings.HasSuffix(name, "(raw)") && !strings.Contains(found, name+" in ") {
			t.Fatalf("before the erasure, %s is in no database file: the test cannot see the files", name)
		}
	}

	erase(t, e, code, tok)
	for _, f := range storetest.Leftovers(t, dsn, secrets) {
		if !strings.HasPrefix(f, "device key ") || strings.Contains(f, "(raw)") {
			t.Errorf("after the erasure: %s", f)
		}
	}
	m2 := pollPeers(t, e.url, gw, m.Version, 0)
	if len(m2.Removed) != 2 {
		t.Fatalf("the gateway was not told of the removal: %+v", m2)
	}
	pollPeers(t, e.url, gw, m2.Version, 0) // it holds the removal
	if left := storetest.Leftovers(t, dsn, secrets); len(left) != 0 {
		t.Errorf("after the gateway synced the removal:\n%s", strings.Join(left, "\n"))
	}
}
