package client

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"

	"veil/internal/transport"
)

// dropBind is a UDP bind whose every send is lost, as on a network that
// blocks UDP.
type dropBind struct{ conn.Bind }

func (dropBind) Send([][]byte, conn.Endpoint) error { return nil }

func TestAutoFallsBack(t *testing.T) {
	tests := []struct {
		name           string
		withTLS, wQUIC bool
		blockUDP       bool
		asked, want    string
	}{
		{"udp works", true, true, false, transport.Auto, transport.UDP},
		{"udp blocked: quic", true, true, true, transport.Auto, transport.QUIC},
		{"udp blocked, no quic: tls", true, false, true, transport.Auto, transport.TLS},
		{"tls asked", true, true, false, transport.TLS, transport.TLS},
		{"quic asked", true, true, false, transport.QUIC, transport.QUIC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newFakeGatewayOn(t, tt.withTLS, tt.wQUIC)
			st := testState(t)
			g.allow(t, st)
			var bind conn.Bind
			if tt.blockUDP {
				bind = dropBind{conn.NewDefaultBind()}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			tun, err := Up(ctx, TunnelConfig{State: st, Server: g.server, Mode: ModeProxy,
				SOCKS: "127.0.0.1:0", HTTPProxy: "off", Transport: tt.asked, Bind: bind, HandshakeTimeout: 20 * time.Second})
			if err != nil {
				t.Fatalf("Up: %v", err)
			}
			defer tun.Close()
			if got := tun.Status().Transport; got != tt.want {
				t.Fatalf("transport = %q, want %q", got, tt.want)
			}
			// Traffic flows over it: the gateway's HTTP server answers.
			c := socksClient(t, tun.Status().SOCKS)
			resp, err := c.Get("http://" + gw4 + "/")
			if err != nil {
				t.Fatalf("GET through the tunnel: %v", err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != "10.64.0.2" {
				t.Fatalf("gateway saw %q", b)
			}
		})
	}
}

func TestTransportNotOffered(t *testing.T) {
	g := newFakeGateway(t)
	st := testState(t)
	for _, tr := range []string{transport.TLS, transport.QUIC, "carrier-pigeon"} {
		_, err := Up(context.Background(), TunnelConfig{State: st, Server: g.server, Mode: ModeProxy,
			SOCKS: "off", HTTPProxy: "off", Transport: tr})
		if err == nil {
			t.Fatalf("Up over %s with a gateway that offers none: no error", tr)
		}
	}
	order, err := transportOrder(transport.Auto, transportInfo(g.server))
	if err != nil || len(order) != 1 || order[0] != transport.UDP {
		t.Fatalf("auto order without TLS or QUIC = %v, %v", order, err)
	}
	if _, err := transportOrder("x", transport.Gateway{}); err == nil || errors.Is(err, transport.ErrUnavailable) {
		t.Fatalf("unknown transport: %v", err)
	}
}

func TestNextTransportCycles(t *testing.T) {
	g := newFakeGatewayOn(t, true, true)
	tun := &Tunnel{cfg: TunnelConfig{Transport: transport.Auto}, gw: transportInfo(g.server), bind: transport.NewClientBind(nil)}
	var got []string
	for range 4 {
		tr, ok := tun.nextTransport()
		if !ok {
			t.Fatal("no next transport")
		}
		got = append(got, tr)
	}
	if want := []string{transport.QUIC, transport.TLS, transport.UDP, transport.QUIC}; !slices.Equal(got, want) {
		t.Fatalf("transports = %v, want %v", got, want)
	}
	tun.cfg.Transport = transport.TLS
	if _, ok := tun.nextTransport(); ok {
		t.Fatal("a transport asked for by name changed")
	}
}
