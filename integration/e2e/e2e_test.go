// Package e2e is Veil's in-process end-to-end test:
// `veil serve` with its built-in netstack gateway, a DNS hierarchy for the
// gateway's resolver, and proxy-mode clients, all on loopback in one test
// process, with no root.
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"veil/integration/harness"
	"veil/internal/client"
)

// clientAddr is where the clients' WireGuard packets come from, so that
// the test servers can tell the client's address from the gateway's.
var clientAddr = netip.MustParseAddr("127.9.8.6")

func randomLabel(t *testing.T, prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// TestProxyMode shows a whole proxy-mode use: HTTP through the SOCKS5 and
// HTTP proxies reaches a test server, which sees the gateway's side, not
// the client; a host name is resolved by the gateway's own resolver; UDP
// goes through a SOCKS5 association; a
// revoked device and then an expired account lose their tunnels at the
// next peer-map sync while other tunnels stay up.
func TestProxyMode(t *testing.T) {
	probe := randomLabel(t, "probe") + ".veil-e2e.test"
	loop := netip.MustParseAddr("127.0.0.1")
	dns := harness.StartDNS(t, harness.DNSConfig{Zone: "veil-e2e.test",
		Records: map[string]netip.Addr{probe: loop}})
	echo := harness.StartEcho(t, loop)
	env := harness.Start(t, harness.Options{DNS: dns})

	// Two accounts: one loses its device, the other its paid time.
	type user struct {
		code string
		st   *client.State
		tun  *client.Tunnel
		web  *http.Client
	}
	newUser := func() *user {
		u := &user{code: env.CreateAccount(t, 30)}
		u.st = env.Login(t, t.TempDir(), u.code)
		u.tun = env.Up(t, u.st, clientAddr)
		u.web = harness.SOCKSClient(t, u.tun.SOCKSAddr(), 20*time.Second)
		return u
	}
	a, b := newUser(), newUser()
	tunnelIP := func(u *user) string { p, _ := netip.ParsePrefix(u.st.IPv4); return p.Addr().String() }

	t.Run("socks5 by address exits from the gateway", func(t *testing.T) {
		for _, u := range []*user{a, b} {
			got, err := harness.Get(u.web, echo.URL+"/")
			if err != nil {
				t.Fatalf("fetch through the tunnel: %v", err)
			}
			if got == clientAddr.String() || got == tunnelIP(u) {
				t.Fatalf("the server saw the client's address %s", got)
			}
			if got != loop.String() {
				t.Fatalf("the server saw %q, want the gateway host's %s", got, loop)
			}
		}
		if st := env.Svc.Gateway.Stats(); st.Peers != 2 || st.RxBytes == 0 {
			t.Fatalf("gateway stats = %+v, want 2 peers and traffic", st)
		}
	})

	t.Run("my ip says protected through the tunnel only", func(t *testing.T) {
		report := func(c *http.Client) map[string]any {
			t.Helper()
			body, err := harness.Get(c, env.Svc.URL()+"/api/v1/ip")
			if err != nil {
				t.Fatal(err)
			}
			var rep map[string]any
			if err := json.Unmarshal([]byte(body), &rep); err != nil {
				t.Fatalf("%v: %q", err, body)
			}
			return rep
		}
		if rep := report(a.web); rep["protected"] != true || rep["gateway"] != env.Config.GatewayName {
			t.Errorf("through the tunnel: %v", rep)
		}
		if rep := report(env.HTTP); rep["protected"] != false {
			t.Errorf("a direct visit from the same machine: %v", rep)
		}
	})

	t.Run("socks5 host name resolved by the gateway's resolver", func(t *testing.T) {
		// The name exists only in the test hierarchy, which only the
		// gateway's resolver knows: the system cannot resolve it.
		if addrs, err := net.DefaultResolver.LookupHost(context.Background(), probe); err == nil {
			t.Fatalf("the system resolved %s to %v: the test proves nothing", probe, addrs)
		}
		u := "http://" + net.JoinHostPort(probe, strconv.Itoa(echo.Port)) + "/"
		got, err := harness.Get(a.web, u)
		if err != nil {
			t.Fatalf("fetch %s through SOCKS5: %v", u, err)
		}
		if got != loop.String() {
			t.Fatalf("the server saw %q", got)
		}
		if !slices.Contains(dns.AuthQueries(), probe+".") {
			t.Fatalf("the authoritative server never saw %s; it saw %v", probe, dns.AuthQueries())
		}
		// The HTTP proxy resolves the same way.
		pu, _ := url.Parse("http://" + a.tun.HTTPProxyAddr())
		hp := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(pu), DisableKeepAlives: true}}
		if got, err := harness.Get(hp, u); err != nil || got != loop.String() {
			t.Fatalf("fetch %s through the HTTP proxy: %q, %v", u, got, err)
		}
		// A name the hierarchy does not have fails instead of being
		// resolved elsewhere.
		if _, err := harness.Get(a.web, "http://missing."+strings.SplitN(probe, ".", 2)[1]+"/"); err == nil {
			t.Fatal("a name that does not exist was fetched")
		}
	})

	t.Run("socks5 udp associate", func(t *testing.T) {
		udpEcho := harness.StartUDPEcho(t, loop)
		u := harness.AssociateUDP(t, a.tun.SOCKSAddr())
		before := a.tun.Status()
		ask := func(host, payload string) {
			t.Helper()
			if err := u.Send(host, udpEcho.Port(), []byte(payload)); err != nil {
				t.Fatal(err)
			}
			src, got, err := u.Recv(10 * time.Second)
			if err != nil {
				t.Fatalf("no answer through the association for %s: %v", host, err)
			}
			if src != udpEcho {
				t.Errorf("the answer's header names %v, want the server %v", src, udpEcho)
			}
			if want := loop.String() + " " + payload; string(got) != want {
				t.Fatalf("the server answered %q, want %q (it must see the gateway's side)", got, want)
			}
		}
		ask(loop.String(), "by address")
		// A name only the gateway's resolver knows.
		ask(probe, "by name")
		if after := a.tun.Status(); after.TxBytes <= before.TxBytes || after.RxBytes <= before.RxBytes {
			t.Fatalf("the tunnel's counters did not move (%d/%d → %d/%d): the datagrams went around it",
				before.TxBytes, before.RxBytes, after.TxBytes, after.RxBytes)
		}

		// A fragment and a malformed header are dropped; the association
		// goes on.
		u.SendRaw([]byte{0, 0, 1, 1, 127, 0, 0, 1, byte(udpEcho.Port() >> 8), byte(udpEcho.Port()), 'f'})
		u.SendRaw([]byte{0, 0, 0, 9, 'x'})
		ask(loop.String(), "after junk")

		// Another socket on this machine cannot use the relay port.
		stranger, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(u.Relay))
		if err != nil {
			t.Fatal(err)
		}
		defer stranger.Close()
		d := append([]byte{0, 0, 0, 1}, loop.AsSlice()...)
		stranger.Write(append(binary.BigEndian.AppendUint16(d, udpEcho.Port()), "stranger"...))
		if _, got, err := u.Recv(time.Second); err == nil {
			t.Fatalf("a stranger's datagram was relayed: %q came back", got)
		}
		stranger.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		if n, err := stranger.Read(make([]byte, 512)); err == nil {
			t.Fatalf("the stranger got %d bytes from the relay", n)
		}

		// The association ends with its TCP connection: the relay port
		// closes, and the kernel refuses what is sent to it.
		u.Close()
		deadline := time.Now().Add(5 * time.Second)
		for {
			u.Send(loop.String(), udpEcho.Port(), []byte("late"))
			_, _, err := u.Recv(200 * time.Millisecond)
			if errors.Is(err, syscall.ECONNREFUSED) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the relay port still open after the TCP connection closed: %v", err)
			}
		}
	})

	t.Run("revoked device loses its tunnel", func(t *testing.T) {
		if err := env.API(a.st.Token).DeleteDevice(context.Background(), a.st.DeviceID); err != nil {
			t.Fatalf("DELETE /api/v1/devices/%d: %v", a.st.DeviceID, err)
		}
		waitLost(t, env, a.tun, echo.URL, 1)
		if _, err := harness.Get(b.web, echo.URL+"/"); err != nil {
			t.Fatalf("the other account's tunnel broke too: %v", err)
		}
	})

	t.Run("expired account loses its tunnel", func(t *testing.T) {
		env.Expire(t, b.code)
		waitLost(t, env, b.tun, echo.URL, 0)
	})
}

// waitLost waits, bounded by a few peer-map syncs (the control plane's
// activity sync runs every 5 s and the gateway long-polls), until the
// gateway has peers left and a fetch through tun fails; then it checks
// that fetches keep failing.
func waitLost(t *testing.T, env *harness.Env, tun *client.Tunnel, url string, peers int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for env.Svc.Gateway.Stats().Peers != peers {
		if time.Now().After(deadline) {
			t.Fatalf("the gateway still has %d peers, want %d", env.Svc.Gateway.Stats().Peers, peers)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c := harness.SOCKSClient(t, tun.SOCKSAddr(), 2*time.Second)
	for range 3 {
		if _, err := harness.Get(c, url+"/"); err == nil {
			t.Fatal("a fetch through the tunnel still works after the gateway dropped the peer")
		}
	}
}
