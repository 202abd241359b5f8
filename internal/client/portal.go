package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Portal windows: how long `veil portal` opens the way to a captive
// portal by default, and at most.
const (
	DefaultPortalWindow = 5 * time.Minute
	MaxPortalWindow     = 30 * time.Minute
)

// ErrPortalMode is returned by a portal request to a tunnel in proxy
// mode, which never stands between the system and a portal.
var ErrPortalMode = errors.New("portal mode is for tun mode: in proxy mode only the proxies' traffic uses the tunnel, and the browser reaches a portal directly")

// OpenPortal opens, for d, the way to a captive portal: the holding
// process's kill switch lets out DHCP, DNS to the LAN's resolvers and
// TCP 80 and 443 outside the tunnel, the system resolver points at the
// LAN's, and both are sealed again when d is over or the tunnel's
// gateway answers again (a handshake after the opening), whichever is
// first. Without a holding process, it opens the kill switch a dead
// connection left on, and the kernel alone reseals it (the exceptions
// carry an nftables timeout). d of zero seals at once. It returns when
// the window ends.
func OpenPortal(ctx context.Context, dir string, d time.Duration) (time.Time, error) {
	if d < 0 || d > MaxPortalWindow {
		return time.Time{}, fmt.Errorf("a portal window lasts from 0 to %s", MaxPortalWindow)
	}
	resp, err := request(ctx, dir, ctlRequest{Cmd: "portal", For: d})
	if err == nil {
		if resp.Status == nil {
			return time.Time{}, errors.New("the veil process gave no status")
		}
		return resp.Status.PortalUntil, nil
	}
	if !errors.Is(err, ErrNotConnected) {
		return time.Time{}, err
	}
	return openPortalLockdown(dir, d)
}

// openPortal opens (or, for d zero, seals) the tunnel's portal window.
func (t *Tunnel) openPortal(d time.Duration) error {
	if t.tun == nil {
		return ErrPortalMode
	}
	t.opMu.Lock()
	defer t.opMu.Unlock()
	select {
	case <-t.closed:
		return errors.New("the tunnel is closing")
	default:
	}
	if d == 0 {
		return t.sealPortalLocked()
	}
	now := time.Now()
	until := now.Add(d)
	if err := t.tun.openPortal(until); err != nil {
		t.sealPortalLocked()
		return err
	}
	t.mu.Lock()
	t.portalOpened, t.portalUntil = now, until
	t.mu.Unlock()
	if t.portalTimer != nil {
		t.portalTimer.Stop()
	}
	t.portalTimer = time.AfterFunc(d, func() {
		t.opMu.Lock()
		defer t.opMu.Unlock()
		if !time.Now().Before(t.portalEnd()) {
			t.sealPortalLocked()
			t.log.Info("portal window over; sealed")
		}
	})
	t.log.Info("portal window open", "for", d.String())
	return nil
}

// sealPortalLocked closes the portal window, under opMu.
func (t *Tunnel) sealPortalLocked() error {
	if t.portalTimer != nil {
		t.portalTimer.Stop()
		t.portalTimer = nil
	}
	t.mu.Lock()
	dns := t.dns
	open := !t.portalUntil.IsZero()
	t.portalOpened, t.portalUntil = time.Time{}, time.Time{}
	t.mu.Unlock()
	select {
	case <-t.closed:
		return nil // close undoes it all
	default:
	}
	if !open {
		return nil
	}
	return t.tun.sealPortal(dns)
}

func (t *Tunnel) portalEnd() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.portalUntil
}

// sealPortalIfUp closes the portal window once the gateway has answered
// since it opened: the tunnel is up, nothing needs to go around it.
func (t *Tunnel) sealPortalIfUp() {
	t.mu.Lock()
	opened := t.portalOpened
	t.mu.Unlock()
	if opened.IsZero() {
		return
	}
	if st := t.Status(); !st.LastHandshake.After(opened) {
		return
	}
	t.opMu.Lock()
	defer t.opMu.Unlock()
	if t.portalEnd().IsZero() {
		return
	}
	if err := t.sealPortalLocked(); err != nil {
		t.log.Warn("sealing the portal window", "err", err)
		return
	}
	t.log.Info("tunnel up; portal window sealed")
}

// parseNameservers reads the nameserver lines of a resolver file.
func parseNameservers(b []byte) []netip.Addr {
	var out []netip.Addr
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		if a, err := netip.ParseAddr(f[1]); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// PortalCheckPath is the control plane's check endpoint: it answers 204
// with no body, which a captive portal, answering for it, does not.
const PortalCheckPath = "/generate_204"

// PortalCheckURL is the default check URL for the control plane at
// control: plain HTTP, which is what portals intercept, on its host.
func PortalCheckURL(control string) (string, error) {
	u, err := url.Parse(control)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("control plane URL %q: no host", control)
	}
	host := u.Host
	if u.Scheme == "https" {
		host = u.Hostname()
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
	}
	return "http://" + host + PortalCheckPath, nil
}

// PortalCheck is what a fetch of the check URL found.
type PortalCheck struct {
	// Intercepted is true when something other than the check URL's own
	// server answered: a redirect elsewhere, or anything but 204.
	Intercepted bool `json:"intercepted"`
	// Status is the HTTP status of the answer.
	Status int `json:"status"`
	// Location is where a redirect pointed: the portal's page, usually.
	Location string `json:"location,omitempty"`
}

// CheckPortal fetches checkURL (plain HTTP) with hc, without following
// redirects, and says whether a captive portal answered instead.
func CheckPortal(ctx context.Context, hc *http.Client, checkURL string) (PortalCheck, error) {
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, checkURL, nil)
	if err != nil {
		return PortalCheck{}, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return PortalCheck{}, fmt.Errorf("portal check: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	pc := PortalCheck{Status: resp.StatusCode, Location: resp.Header.Get("Location")}
	switch {
	case resp.StatusCode == http.StatusNoContent:
	case resp.StatusCode/100 == 3 && sameHost(checkURL, pc.Location):
		// The check URL's own server moving it to HTTPS: no portal.
	default:
		pc.Intercepted = true
	}
	return pc, nil
}

func sameHost(a, loc string) bool {
	u, err := url.Parse(a)
	if err != nil {
		return false
	}
	l, err := u.Parse(loc)
	return err == nil && l.Hostname() == u.Hostname()
}
