package site

import (
	"crypto/hmac"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"veil/internal/apitypes"
	"veil/internal/controlplane"
	"veil/internal/device"
	"veil/internal/i18n"
	"veil/internal/store"
)

// The account page's device manager. Renaming and removing are plain
// forms; adding a device is the page's script (web/static/devices.js):
// it makes the WireGuard key pair in the browser, sends only the public
// key here, and writes the wg-quick file and its QR code itself, so the
// private key never leaves the browser.

// csrfHeader carries the form token on the script's JSON requests.
const csrfHeader = "X-CSRF-Token"

// pageJSON admits the page script's JSON calls as pageForm admits its
// forms: the site's own Origin, the form token (in csrfHeader) and a live
// session cookie. The API's handler then serves the call.
func (s *Site) pageJSON(h func(http.ResponseWriter, *http.Request, *store.Account, []byte)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := csrfCookieValue(r)
		if !s.sameOrigin(r) || v == "" || !hmac.Equal([]byte(r.Header.Get(csrfHeader)), []byte(s.csrfFor(v))) {
			controlplane.WriteError(w, http.StatusForbidden, i18n.For(i18n.Default).T("notice.form_refused"))
			return
		}
		acc, hash := s.pageAccount(r)
		if acc == nil {
			controlplane.WriteError(w, http.StatusUnauthorized, "your session has ended; reload the page and log in again")
			return
		}
		h(w, r, acc, hash)
	}
}

// deviceRow is one line of the page's device list. Nothing in it says
// when a device was last used: Veil keeps no such record.
type deviceRow struct {
	ID         int64
	Name       string
	IPv4, IPv6 string
	Created    string
	KeyAgeDays int
}

// serverOption is a location the page offers for a new device's file,
// with what the script needs to write it.
type serverOption struct {
	Name, Location         string
	PublicKey, Endpoint    string
	TunnelIPv4, TunnelIPv6 string
}

func (s *Site) deviceRows(devs []apitypes.Device) []deviceRow {
	now := s.API.Now()
	rows := make([]deviceRow, 0, len(devs))
	for _, v := range devs {
		rows = append(rows, deviceRow{ID: v.ID, Name: v.Name, IPv4: v.IPv4, IPv6: v.IPv6,
			Created: date(&v.CreatedAt), KeyAgeDays: int(now.Sub(v.KeyCreatedAt) / (24 * time.Hour))})
	}
	return rows
}

// serverOptions lists the gateways a file can be made for: those online
// with a key.
func (s *Site) serverOptions(r *http.Request) ([]serverOption, error) {
	gws, err := s.API.Servers(r.Context())
	if err != nil {
		return nil, err
	}
	var out []serverOption
	for _, v := range gws {
		if !v.Online || v.PublicKey == "" {
			continue
		}
		out = append(out, serverOption{Name: v.Name, Location: v.Location, PublicKey: v.PublicKey,
			Endpoint: v.Endpoint, TunnelIPv4: v.TunnelIPv4, TunnelIPv6: v.TunnelIPv6})
	}
	return out, nil
}

func pageDeviceID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		toAccount(w, r, "?m=nodevice")
		return 0, false
	}
	return id, true
}

func (s *Site) pageRenameDevice(w http.ResponseWriter, r *http.Request) {
	id, ok := pageDeviceID(w, r)
	if !ok {
		return
	}
	name, err := device.CleanName(r.PostForm.Get("name"), "")
	if err != nil || name == "" {
		toAccount(w, r, "?m=badname#devices")
		return
	}
	s.pageDeviceDone(w, r, "renamed", func() error {
		return s.API.RenameDevice(r.Context(), accountFrom(r).ID, id, name)
	})
}

func (s *Site) pageRemoveDevice(w http.ResponseWriter, r *http.Request) {
	id, ok := pageDeviceID(w, r)
	if !ok {
		return
	}
	s.pageDeviceDone(w, r, "removed", func() error {
		return s.API.DeleteDevice(r.Context(), accountFrom(r).ID, id)
	})
}

// pageDeviceDone runs change and sends the visitor back to the list with
// the message for done, or for a device the account does not hold.
func (s *Site) pageDeviceDone(w http.ResponseWriter, r *http.Request, done string, change func() error) {
	m := done
	if err := change(); errors.Is(err, store.ErrNotFound) {
		m = "nodevice"
	} else if err != nil {
		s.pageFail(w, r, "changing device", err)
		return
	}
	toAccount(w, r, "?m="+url.QueryEscape(m)+"#devices")
}
