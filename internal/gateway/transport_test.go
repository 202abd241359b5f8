package gateway

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"veil/internal/transport"
	"veil/internal/wg"
)

// freePort returns a port that was free on loopback a moment ago.
func freePort(t testing.TB, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestTransportsOnDemand: a gateway with TLS and QUIC reports their ports
// and its certificate's pin, and a device it has never seen is put on
// the WireGuard device by its first handshake over either, as over UDP.
func TestTransportsOnDemand(t *testing.T) {
	control := newFakeControl(t)
	cert, err := transport.SelfSigned("")
	if err != nil {
		t.Fatal(err)
	}
	pin, _ := transport.CertPin(cert)
	// A port found free may be taken by another test before the gateway
	// binds it: then take others.
	var g *Gateway
	var tlsPort, quicPort int
	for attempt := 1; ; attempt++ {
		tlsPort, quicPort = freePort(t, "tcp"), freePort(t, "udp")
		g, _, err = tryStartGateway(t, control, loopback, nil, func(c *Config) {
			c.TLSPort, c.QUICPort, c.Certificate = tlsPort, quicPort, &cert
		})
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "address already in use") || attempt == 5 {
			t.Fatal(err)
		}
	}
	waitFor(t, "a report", func() bool { _, ok := control.lastReport(); return ok })
	rep, _ := control.lastReport()
	if rep.TLSPort != tlsPort || rep.QUICPort != quicPort || rep.CertPin != pin {
		t.Fatalf("report: TLS %d, QUIC %d, pin %q; want %d, %d, %q", rep.TLSPort, rep.QUICPort, rep.CertPin, tlsPort, quicPort, pin)
	}
	srv := startHTTP(t)
	for i, tr := range []string{transport.TLS, transport.QUIC} {
		t.Run(tr, func(t *testing.T) {
			key, _ := wg.GenerateKey()
			b := transport.NewClientBind(nil)
			if err := b.Use(tr, transport.Gateway{TLSPort: tlsPort, QUICPort: quicPort, Pin: pin}); err != nil {
				t.Fatal(err)
			}
			c := startClientBind(t, g, key, netip.MustParseAddr(fmt.Sprintf("10.64.1.%d", i+1)),
				netip.MustParseAddr(fmt.Sprintf("fd7a:7665:696c::1:%d", i+1)), b)
			v := control.set(c.peer)
			waitFor(t, "map applied", func() bool { return g.Stats().PeerMapVersion >= v })
			if _, err := c.httpGet(testCtx(t), srv.URL); err != nil {
				t.Fatalf("GET over %s: %v", tr, err)
			}
		})
	}
	if st := g.Stats(); st.Peers != 2 {
		t.Fatalf("%d active peers, want the two admitted over TLS and QUIC", st.Peers)
	}
}

// TestSecondGatewaySameTLSPort: a second gateway on a host whose TLS port
// a first one holds fails at start, naming the port, instead of sharing
// it so that clients reach either at random.
func TestSecondGatewaySameTLSPort(t *testing.T) {
	control := newFakeControl(t)
	var tlsPort int
	for attempt := 1; ; attempt++ {
		tlsPort = freePort(t, "tcp")
		_, _, err := tryStartGateway(t, control, loopback, nil, func(c *Config) { c.TLSPort = tlsPort })
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "address already in use") || attempt == 5 {
			t.Fatal(err)
		}
	}
	_, _, err := tryStartGateway(t, control, loopback, nil, func(c *Config) { c.TLSPort = tlsPort })
	if err == nil {
		t.Fatalf("a second gateway started on TLS port %d", tlsPort)
	}
	if want := fmt.Sprintf(":%d: bind: address already in use", tlsPort); !strings.Contains(err.Error(), want) {
		t.Errorf("second gateway: %v, want an error with %q", err, want)
	}
}
