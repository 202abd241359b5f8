package controlplane

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/http"
	"strconv"

	"veil/internal/apitypes"
	"veil/internal/device"
	"veil/internal/store"
	"veil/internal/wg"
)

// ProxyUser is the user name of every proxy credential: the password
// alone names the device, so the name carries nothing.
const ProxyUser = "veil"

// errExpired is what an extension is told when the account has no paid
// or trial time left.
const errExpired = "this account has expired: add time on the website, then connect again"

// createExtension registers a browser extension as a device of the
// account and shows its proxy credential once. The credential is 256
// random bits, so a plain SHA-256 of it is as hard to reverse as the
// secret is to guess: gateways check it without any key of the control
// plane's, and the database holds nothing that opens the proxy.
func (s *Server) createExtension(w http.ResponseWriter, r *http.Request) {
	acc := accountFrom(r)
	var req apitypes.ExtensionRequest
	if err := decode(w, r, &req); err != nil {
		writeDecodeError(w, err)
		return
	}
	name, err := device.CleanName(req.Name, "browser extension")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !acc.Active(s.cfg.Now()) {
		writeError(w, http.StatusPaymentRequired, errExpired)
		return
	}
	// The device's WireGuard key is random bytes with no private key
	// anyone holds; the peer map sends no allowed IPs for it, so it is
	// never a WireGuard peer. It gives the device the identity the peer
	// map's deltas and removals use.
	key, err := wg.GenerateKey()
	if err != nil {
		s.fail(w, "making extension key", err)
		return
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	password := base64.RawURLEncoding.EncodeToString(secret)
	d, err := s.cfg.Store.CreateDevice(r.Context(), store.NewDevice{
		AccountID: acc.ID, Name: name, PublicKey: key.Public().Base64(), MaxDevices: s.cfg.MaxDevices,
		MinIndex: s.cfg.Pools.MinIndex(), MaxIndex: s.cfg.Pools.MaxIndex(), ProxyHash: ProxyHash(password),
	})
	if err != nil {
		s.deviceError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, apitypes.ExtensionCredential{
		Device: s.deviceView(d), ProxyUser: ProxyUser, ProxyPassword: password,
	})
}

// ProxyHash is what the store and the peer map hold of a proxy
// credential: its SHA-256 in hex.
func ProxyHash(password string) string {
	h := sha256.Sum256([]byte(password))
	return hex.EncodeToString(h[:])
}

func deviceKind(d *store.Device) string {
	if d.ProxyHash != "" {
		return apitypes.DeviceKindExtension
	}
	return ""
}

// proxyAddr is where g's HTTPS proxy listens: its endpoint's host, the
// reported port. Empty when it runs none.
func proxyAddr(g *store.Gateway) string {
	if g.ProxyPort == 0 {
		return ""
	}
	host, _, err := net.SplitHostPort(g.Endpoint)
	if err != nil {
		return ""
	}
	return net.JoinHostPort(host, strconv.Itoa(g.ProxyPort))
}
