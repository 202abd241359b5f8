//go:build linux

package netns

import (
	"encoding/json"
	"strings"
	"testing"

	"veil/internal/client"
)

// censor replaces the gateway host's "censor" table with one that drops,
// on the link to the client, what rule matches, both ways; the table is
// removed at cleanup. It stands for a network between the two that
// blocks traffic, as some national networks do.
func (tp *topo) censor(t testing.TB, rule string) {
	t.Helper()
	script := `table inet censor
delete table inet censor
table inet censor {
	chain in { type filter hook input priority -10; policy accept; iifname "g0" ` + rule + ` drop; }
	chain out { type filter hook output priority -10; policy accept; oifname "g0" ` + rule + ` drop; }
}
`
	cmd := tp.in(tp.g, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("installing the censor rule %q: %v\n%s", rule, err, out)
	}
	t.Cleanup(func() { tp.in(tp.g, "nft", "delete", "table", "inet", "censor").Run() })
}

// connectStatus runs `veil connect` with args and returns the status of
// the tunnel it brought up.
func (tp *topo) connectStatus(t testing.TB, state string, args ...string) client.Status {
	t.Helper()
	out := tp.veil(t, tp.c, append([]string{"connect", "--mode", "tun", "--state", state}, args...)...)
	t.Logf("connect: %s", out)
	return tp.status(t, state)
}

// status is `veil status --json` of the client namespace.
func (tp *topo) status(t testing.TB, state string) client.Status {
	t.Helper()
	var st client.Status
	if err := json.Unmarshal([]byte(tp.veil(t, tp.c, "status", "--json", "--state", state)), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestObfuscatedTransports blocks WireGuard between the client and the
// gateway in two ways and shows that the client still connects, over TLS
// on TCP 443 or over QUIC, and that its traffic leaves from the gateway.
func TestObfuscatedTransports(t *testing.T) {
	requireNetns(t, "curl")
	tp := newTopo(t)
	gw := tp.startGateway(t, tunGateway)
	srv := tp.onlineServer(t, gw.location)
	if srv.TLSPort != 443 || srv.QUICPort != 443 || srv.CertPin == "" {
		t.Fatalf("server list: TLS port %d, QUIC port %d, pin %q; want both on 443 with a pin", srv.TLSPort, srv.QUICPort, srv.CertPin)
	}
	state := tp.login(t, gw)

	t.Run("a HTTPS to the TLS port gets a plain page", func(t *testing.T) {
		cmd := tp.in(tp.c, "curl", "-sk", "--max-time", "10", "https://"+gwIn4+"/")
		out, err := cmd.Output()
		if err != nil || !strings.Contains(string(out), "<html") {
			t.Fatalf("curl https://%s/: %v\n%s", gwIn4, err, out)
		}
	})

	t.Run("b all UDP dropped: auto comes up over TLS", func(t *testing.T) {
		tp.censor(t, "meta l4proto udp")
		st := tp.connectStatus(t, state, "--location", gw.location, "--transport", "auto", "--timeout", "20s")
		if st.Transport != "tls" || st.HandshakeAge < 0 || !st.KillSwitch {
			t.Fatalf("status = %+v, want connected over tls with the kill switch", st)
		}
		tp.checkExit(t)
		tp.disconnect(t, state)
	})

	t.Run("c WireGuard initiations dropped: QUIC and TLS connect", func(t *testing.T) {
		// A handshake initiation is a UDP datagram of 148 bytes (156
		// with the UDP header) whose first payload byte is 1.
		tp.censor(t, "udp length 156 @th,64,8 1")
		// The rule works: plain WireGuard gets no handshake.
		cmd := tp.in(tp.c, tp.bin, "connect", "--mode", "tun", "--kill-switch=false", "--state", state,
			"--location", gw.location, "--transport", "udp", "--timeout", "6s")
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Fatalf("plain UDP connected despite the rule:\n%s", out)
		} else if !strings.Contains(string(out), "no handshake") {
			t.Fatalf("plain UDP failed for another reason: %s", out)
		}
		for _, tr := range []string{"quic", "tls"} {
			st := tp.connectStatus(t, state, "--location", gw.location, "--transport", tr, "--timeout", "20s")
			if st.Transport != tr || st.HandshakeAge < 0 {
				t.Fatalf("status = %+v, want connected over %s", st, tr)
			}
			tp.checkExit(t)
			tp.disconnect(t, state)
		}
	})
}
