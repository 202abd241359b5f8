//go:build linux

package netns

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"veil/internal/client"
)

// portalURL is the captive portal: an HTTP server on the client's LAN,
// on the gateway host's LAN address, that answers anything.
const portalURL = "http://" + gwIn4 + "/"

// fetchPortal fetches portalURL from the client namespace and returns
// what the portal saw as the caller's address, or an error.
func (tp *topo) fetchPortal() (string, error) {
	return tp.httpIn(tp.c, "GET", portalURL, "-", "")
}

// TestCaptivePortal: with the kill switch on and the gateway gone, the
// portal on the LAN is out of reach; `veil portal --for 3s` lets HTTP to
// it out (from the client's LAN address, not through the tunnel) and the
// system resolver point at the LAN's, and nothing else; then the window
// seals by itself. A window whose holding process is SIGKILLed seals all
// the same (the kernel's timeout), and the kill switch that process
// leaves can open a window of its own.
func TestCaptivePortal(t *testing.T) {
	requireNetns(t)
	tp := newTopo(t)
	gw := tp.startGateway(t, builtinGateway)
	state := tp.login(t, gw)
	tp.veil(t, tp.c, "connect", "--mode", "tun", "--location", gw.location, "--state", state, "--timeout", "15s")
	tp.start(t, tp.g, []string{"VEIL_NETNS_ROLE=echo"}, tp.self)
	status := func() client.Status { t.Helper(); return tp.status(t, state) }
	// The gateway gone, nothing answers through the tunnel, and no
	// handshake seals the window early.
	gw.kill(t)
	if out, err := tp.fetchPortal(); err == nil {
		t.Fatalf("the portal answered %q before `veil portal`", out)
	}
	sealed := func(t *testing.T, what string) {
		t.Helper()
		// Generous: the window is 3 s; the loop ends as soon as it shows.
		var out string
		var err error
		for range 40 {
			if out, err = tp.fetchPortal(); err != nil {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if err == nil {
			t.Fatalf("%s: the portal still answers %q long after the window", what, out)
		}
	}

	t.Run("a window opens and seals", func(t *testing.T) {
		var res struct {
			Open  bool                `json:"open"`
			Check *client.PortalCheck `json:"check"`
		}
		out := tp.veil(t, tp.c, "portal", "--for", "3s", "--state", state, "--json", "--check-url", portalURL+"generate_204")
		if err := json.Unmarshal([]byte(out), &res); err != nil || !res.Open || res.Check == nil || !res.Check.Intercepted {
			t.Fatalf("veil portal said %s (%v)", out, err)
		}
		if st := status(); st.PortalLeft <= 0 || st.PortalUntil.IsZero() {
			t.Errorf("status during the window: %+v", st)
		}
		if r := readResolv(t, tp.c); r != "" && !strings.Contains(r, "nameserver 192.0.2.53") {
			t.Errorf("resolv.conf during the window does not name the LAN's resolver:\n%s", r)
		}
		stop := tp.capture(t, gw.port)
		got, err := tp.fetchPortal()
		tp.probe(t)
		if err != nil || got != client4 {
			t.Fatalf("the portal during the window: %q, %v; want it to see %s", got, err, client4)
		}
		var other []string
		for _, l := range stop() {
			if !strings.Contains(l, ".80:") && !strings.Contains(l, ".80 ") && !strings.Contains(l, ".443:") &&
				!strings.Contains(l, ".443 ") && !strings.Contains(l, "192.0.2.53.53") && !strings.Contains(l, gwIn4+".8080:") {
				other = append(other, l)
			}
		}
		if len(other) > 0 {
			t.Errorf("%d packets other than the portal's left during the window:\n%s", len(other), strings.Join(other, "\n"))
		}
		sealed(t, "the holder's timer")
		if st := status(); st.PortalLeft != 0 {
			t.Errorf("status after the window: %+v", st)
		}
		if r := readResolv(t, tp.c); !strings.Contains(r, "nameserver 10.64.0.1") {
			t.Errorf("resolv.conf after the window:\n%s", r)
		}
	})

	t.Run("b the holder killed: the kernel seals", func(t *testing.T) {
		pid := status().PID
		tp.veil(t, tp.c, "portal", "--for", "3s", "--state", state, "--check-url", "off")
		if got, err := tp.fetchPortal(); err != nil || got != client4 {
			t.Fatalf("the portal during the window: %q, %v", got, err)
		}
		sigkill(t, pid)
		sealed(t, "the nftables timeout")
		if out := tp.runIn(t, tp.c, "nft", "list", "set", "inet", "veil", "portal_tcp"); strings.Contains(out, "elements") {
			t.Errorf("portal set after the window:\n%s", out)
		}
	})

	t.Run("c the left kill switch opens a window", func(t *testing.T) {
		tp.veil(t, tp.c, "portal", "--for", "3s", "--state", state, "--check-url", "off")
		if got, err := tp.fetchPortal(); err != nil || got != client4 {
			t.Fatalf("the portal during the window: %q, %v", got, err)
		}
		sealed(t, "the nftables timeout")
		tp.disconnect(t, state)
	})
}
