package controlplane_test

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"veil/internal/apitypes"
)

// TestExtension: a browser extension registers as a device of its own,
// gets its proxy credential once, the store keeps only its SHA-256, the
// peer map carries that hash without allowed IPs while the account is
// active, and an expired account gets a clear refusal and leaves the map.
func TestExtension(t *testing.T) {
	e := newEnv(t, nil)
	gw := e.addGateway(t, "gw1")
	if st := e.call(t, "POST", "/api/v1/gateway/report", gw, apitypes.GatewayReport{PublicKey: newPub(t), ProxyPort: 8443}, nil); st != 200 {
		t.Fatalf("report: %d", st)
	}
	var servers []apitypes.Server
	e.call(t, "GET", "/api/v1/servers", "", nil, &servers)
	if len(servers) != 1 || servers[0].Proxy != "192.0.2.1:8443" {
		t.Errorf("servers: %+v, want the proxy at the endpoint's host", servers)
	}

	code := e.newAccount(t, 1)
	tok := e.login(t, code)
	var cred apitypes.ExtensionCredential
	if st := e.call(t, "POST", "/api/v1/extension", tok, apitypes.ExtensionRequest{Name: "Firefox"}, &cred); st != 201 {
		t.Fatalf("POST /api/v1/extension: %d", st)
	}
	if cred.ProxyUser == "" || len(cred.ProxyPassword) < 43 || cred.Device.Kind != apitypes.DeviceKindExtension || cred.Device.Name != "Firefox" {
		t.Fatalf("credential: %+v", cred)
	}
	sum := sha256.Sum256([]byte(cred.ProxyPassword))
	hash := hex.EncodeToString(sum[:])

	// The store holds the hash, never the password.
	var stored string
	if err := e.rawDB(t).QueryRow("SELECT proxy_hash FROM devices WHERE id = ?", cred.Device.ID).Scan(&stored); err != nil || stored != hash {
		t.Errorf("stored %q (%v), want the SHA-256 %s", stored, err, hash)
	}
	var count int
	e.rawDB(t).QueryRow("SELECT COUNT(*) FROM devices WHERE proxy_hash = ? OR name = ?", cred.ProxyPassword, cred.ProxyPassword).Scan(&count)
	if count != 0 {
		t.Error("the password itself is stored")
	}
	var devs []apitypes.Device
	e.call(t, "GET", "/api/v1/devices", tok, nil, &devs)
	if len(devs) != 1 || devs[0].Kind != apitypes.DeviceKindExtension {
		t.Errorf("devices: %+v", devs)
	}
	var export map[string]any
	e.call(t, "GET", "/api/v1/account/export", tok, nil, &export)
	if b := fmt.Sprint(export); !strings.Contains(b, hash) {
		t.Error("the export lacks the credential hash")
	}

	m := pollPeers(t, e.url, gw, 0, 0)
	if len(m.Peers) != 1 || m.Peers[0].ProxyHash != hash || len(m.Peers[0].AllowedIPs) != 0 {
		t.Fatalf("peer map: %+v", m)
	}

	// Expiry: the device leaves the map, a new credential is refused with
	// a sentence the extension shows.
	e.now.Add(48 * time.Hour)
	m2 := pollPeers(t, e.url, gw, m.Version, 20*time.Second)
	if len(m2.Removed) != 1 || m2.Removed[0] != cred.Device.PublicKey {
		t.Fatalf("expired account's extension still in the map: %+v", m2)
	}
	tok = e.login(t, code)
	var refusal apitypes.Error
	if st := e.call(t, "POST", "/api/v1/extension", tok, apitypes.ExtensionRequest{}, &refusal); st != 402 || !strings.Contains(refusal.Error, "expired") {
		t.Errorf("expired account: %d %q", st, refusal.Error)
	}
	if strings.Contains(e.logs.String(), cred.ProxyPassword) {
		t.Error("the password is in the log")
	}
}

// rawDB opens the env's SQLite database read-only, to look at what the
// store holds.
func (e *env) rawDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+e.dbPath+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
