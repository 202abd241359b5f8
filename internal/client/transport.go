package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"veil/internal/apitypes"
	"veil/internal/transport"
)

// DefaultTransport is TunnelConfig.Transport's default in the CLI: plain
// UDP when it works, else QUIC, else TLS.
const DefaultTransport = transport.Auto

// autoStep is how long Auto gives one transport before the next. wireguard-go
// sends a handshake initiation at once and again every 5 s, so each step
// holds at least one attempt of its own.
const autoStep = 7 * time.Second

// transportInfo is what the server list tells about s's TLS and QUIC.
func transportInfo(s apitypes.Server) transport.Gateway {
	gw := transport.Gateway{TLSPort: s.TLSPort, QUICPort: s.QUICPort, Pin: s.CertPin}
	if host, _, err := net.SplitHostPort(s.Endpoint); err == nil {
		if _, err := netip.ParseAddr(host); err != nil {
			gw.ServerName = host // a name: sent as SNI, as a browser would
		}
	}
	return gw
}

// transportOrder is the transports to try, in order, for the one asked
// (empty means UDP) and what gw offers.
func transportOrder(asked string, gw transport.Gateway) ([]string, error) {
	switch asked {
	case "", transport.UDP:
		return []string{transport.UDP}, nil
	case transport.TLS, transport.QUIC:
		if !gw.Offers(asked) {
			return nil, fmt.Errorf("the gateway does not offer WireGuard over %s: try --transport auto or udp", asked)
		}
		return []string{asked}, nil
	case transport.Auto:
		out := []string{transport.UDP}
		for _, t := range []string{transport.QUIC, transport.TLS} {
			if gw.Offers(t) {
				out = append(out, t)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown transport %q: udp, tls, quic or auto", asked)
}

// connect waits for the first handshake over each transport of the
// order in turn: under Auto, a transport that gets no answer within
// autoStep gives way to the next; the last has the whole handshake
// timeout.
func (t *Tunnel) connect(ctx context.Context) error {
	t.mu.Lock()
	gw := t.gw
	t.mu.Unlock()
	order, err := transportOrder(t.cfg.Transport, gw)
	if err != nil {
		return err
	}
	for i, tr := range order {
		if err := t.bind.Use(tr, gw); err != nil {
			return err
		}
		wait := t.cfg.HandshakeTimeout
		if i < len(order)-1 {
			wait = min(autoStep, wait)
		}
		err := t.waitHandshake(ctx, wait)
		if err == nil {
			if i > 0 {
				t.log.Info("plain UDP got no answer; using another transport", "transport", tr)
			}
			return nil
		}
		if !errors.Is(err, ErrNoHandshake) || i == len(order)-1 {
			return err
		}
	}
	return ErrNoHandshake
}

// nextTransport moves an Auto tunnel that gets no answer to the next
// transport the gateway offers (after TLS, back to UDP): the network may
// have started blocking the one in use. It reports the new transport,
// or false when there is no other.
func (t *Tunnel) nextTransport() (string, bool) {
	if t.cfg.Transport != transport.Auto {
		return "", false
	}
	t.mu.Lock()
	gw := t.gw
	t.mu.Unlock()
	order, err := transportOrder(transport.Auto, gw)
	if err != nil || len(order) < 2 {
		return "", false
	}
	cur := t.bind.Transport()
	next := order[0]
	for i, tr := range order {
		if tr == cur {
			next = order[(i+1)%len(order)]
		}
	}
	if t.bind.Use(next, gw) != nil {
		return "", false
	}
	return next, true
}

// useGateway points the bind at a new gateway's TLS and QUIC, keeping
// the transport in use if the gateway offers it, else plain UDP.
func (t *Tunnel) useGateway(gw transport.Gateway) {
	tr := t.bind.Transport()
	if err := t.bind.Use(tr, gw); err != nil {
		t.bind.Use(transport.UDP, gw)
	}
}

// flows are the connections to a gateway that the kill switch lets out.
type flows struct {
	udp, tcp []netip.AddrPort
}

// flowsTo returns the WireGuard endpoint ep and, on its address, the
// QUIC (UDP) and TLS (TCP) ports gw offers.
func flowsTo(ep netip.AddrPort, gw transport.Gateway) flows {
	f := flows{udp: []netip.AddrPort{ep}}
	if gw.Offers(transport.QUIC) {
		f.udp = append(f.udp, netip.AddrPortFrom(ep.Addr(), uint16(gw.QUICPort)))
	}
	if gw.Offers(transport.TLS) {
		f.tcp = append(f.tcp, netip.AddrPortFrom(ep.Addr(), uint16(gw.TLSPort)))
	}
	return f
}

func (f flows) plus(o flows) flows {
	return flows{udp: append(append([]netip.AddrPort(nil), f.udp...), o.udp...), tcp: append(append([]netip.AddrPort(nil), f.tcp...), o.tcp...)}
}
