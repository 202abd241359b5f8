package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"golang.zx2c4.com/wireguard/conn"
)

// Transports a client can use.
const (
	UDP  = "udp"
	TLS  = "tls"
	QUIC = "quic"
	// Auto tries UDP, then QUIC, then TLS (see the client's Up).
	Auto = "auto"
)

// Valid reports whether t names a transport or Auto.
func Valid(t string) bool {
	switch t {
	case UDP, TLS, QUIC, Auto:
		return true
	}
	return false
}

// ErrUnavailable is returned when the gateway does not offer the
// transport asked for.
var ErrUnavailable = errors.New("the gateway does not offer this transport")

// Gateway is what a client needs to reach a gateway by TLS or QUIC, from
// the server list. The gateway's address is the WireGuard endpoint's.
type Gateway struct {
	TLSPort  int
	QUICPort int
	// Pin is the gateway certificate's key pin (Pin).
	Pin string
	// ServerName goes in the TLS handshake (SNI); empty sends none.
	ServerName string
}

// Offers reports whether g takes the transport t.
func (g Gateway) Offers(t string) bool {
	switch t {
	case UDP:
		return true
	case TLS:
		return g.TLSPort > 0 && g.Pin != ""
	case QUIC:
		return g.QUICPort > 0 && g.Pin != ""
	}
	return false
}

// dialRetry is how soon after a failed dial the next is tried; sends in
// between fail at once (wireguard-go retries its handshake anyway).
const dialRetry = time.Second

// ClientBind is a client's conn.Bind: over plain UDP (the wrapped bind)
// or over one TLS or QUIC connection to the gateway, dialed at the first
// send and again whenever it breaks. Use switches between them.
type ClientBind struct {
	udp conn.Bind

	mu        sync.Mutex
	transport string
	gw        Gateway
	mark      uint32
	q         *queue // nil while closed
	cur       msgConn
	curDst    netip.AddrPort
	curKey    string // transport and gateway cur was dialed for
	failedAt  time.Time
	dialMu    sync.Mutex
}

var _ conn.Bind = (*ClientBind)(nil)

// NewClientBind returns a bind sending over udp (nil: wireguard-go's
// default bind) until Use says otherwise.
func NewClientBind(udp conn.Bind) *ClientBind {
	if udp == nil {
		udp = conn.NewDefaultBind()
	}
	return &ClientBind{udp: udp, transport: UDP}
}

// Use makes the bind send over transport t (UDP, TLS or QUIC) to gw; a
// connection of another transport or gateway is closed.
func (b *ClientBind) Use(t string, gw Gateway) error {
	if t != UDP && t != TLS && t != QUIC {
		return fmt.Errorf("transport: unknown transport %q", t)
	}
	if !gw.Offers(t) {
		return ErrUnavailable
	}
	b.mu.Lock()
	b.transport, b.gw = t, gw
	var old msgConn
	if b.cur != nil && b.curKey != b.key() {
		old, b.cur = b.cur, nil
	}
	b.failedAt = time.Time{}
	b.mu.Unlock()
	if old != nil {
		old.close()
	}
	return nil
}

// Transport returns the transport in use.
func (b *ClientBind) Transport() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.transport
}

// key names the transport and gateway; b.mu held.
func (b *ClientBind) key() string {
	return fmt.Sprintf("%s|%d|%d|%s|%s", b.transport, b.gw.TLSPort, b.gw.QUICPort, b.gw.Pin, b.gw.ServerName)
}

// Open opens the UDP bind; the transport connection comes at the first
// send.
func (b *ClientBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	fns, port, err := b.udp.Open(port)
	if err != nil {
		return nil, 0, err
	}
	q := newQueue()
	b.mu.Lock()
	b.q = q
	b.mu.Unlock()
	return append(fns, q.receive), port, nil
}

// Close closes the connection and the UDP bind.
func (b *ClientBind) Close() error {
	b.mu.Lock()
	q, c := b.q, b.cur
	b.q, b.cur = nil, nil
	b.mu.Unlock()
	if q != nil {
		q.close()
	}
	if c != nil {
		c.close()
	}
	return b.udp.Close()
}

// SetMark marks the UDP bind's packets and the connections dialed after.
func (b *ClientBind) SetMark(mark uint32) error {
	b.mu.Lock()
	b.mark = mark
	b.mu.Unlock()
	return b.udp.SetMark(mark)
}

// ParseEndpoint parses the gateway's WireGuard endpoint.
func (b *ClientBind) ParseEndpoint(s string) (conn.Endpoint, error) { return b.udp.ParseEndpoint(s) }

// BatchSize is the UDP bind's.
func (b *ClientBind) BatchSize() int { return b.udp.BatchSize() }

// Send sends over UDP, or over the connection to ep's address, dialing
// it if there is none.
func (b *ClientBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	b.mu.Lock()
	t := b.transport
	b.mu.Unlock()
	if t == UDP {
		return b.udp.Send(bufs, ep)
	}
	c, err := b.conn(ep)
	if err != nil {
		return err
	}
	return c.send(bufs)
}

// conn returns the connection to ep's address, dialing it if needed.
func (b *ClientBind) conn(ep conn.Endpoint) (msgConn, error) {
	b.dialMu.Lock()
	defer b.dialMu.Unlock()
	b.mu.Lock()
	if b.q == nil {
		b.mu.Unlock()
		return nil, net.ErrClosed
	}
	t, gw, mark, q, key := b.transport, b.gw, b.mark, b.q, b.key()
	port := gw.TLSPort
	if t == QUIC {
		port = gw.QUICPort
	}
	dst := netip.AddrPortFrom(ep.DstIP().Unmap(), uint16(port))
	if b.cur != nil && b.curDst == dst && b.curKey == key {
		c := b.cur
		b.mu.Unlock()
		return c, nil
	}
	old := b.cur
	b.cur = nil
	if time.Since(b.failedAt) < dialRetry {
		b.mu.Unlock()
		if old != nil {
			old.close()
		}
		return nil, errors.New("transport: dial failed recently")
	}
	b.mu.Unlock()
	if old != nil {
		old.close()
	}

	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	c, loop, err := dial(ctx, t, dst, gw, mark)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		b.failedAt = time.Now()
		return nil, err
	}
	if b.q != q || b.key() != key { // closed or switched meanwhile
		c.close()
		return nil, net.ErrClosed
	}
	b.cur, b.curDst, b.curKey = c, dst, key
	go func() {
		loop(q, ep)
		b.mu.Lock()
		if b.cur == c {
			b.cur = nil
		}
		b.mu.Unlock()
		c.close()
	}()
	return c, nil
}

// dial opens a transport connection and returns it with its read loop.
func dial(ctx context.Context, t string, dst netip.AddrPort, gw Gateway, mark uint32) (msgConn, func(*queue, conn.Endpoint), error) {
	switch t {
	case TLS:
		d := net.Dialer{Control: markControl(mark)}
		raw, err := d.DialContext(ctx, "tcp", dst.String())
		if err != nil {
			return nil, nil, fmt.Errorf("connecting over TLS: %w", err)
		}
		tc := tls.Client(raw, clientTLS(gw.Pin, gw.ServerName, []string{"h2", "http/1.1"}))
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, nil, fmt.Errorf("TLS handshake with the gateway: %w", err)
		}
		sc := newStreamConn(tc, nil)
		return sc, sc.readLoop, nil
	case QUIC:
		lc := net.ListenConfig{Control: markControl(mark)}
		network := "udp4"
		if dst.Addr().Is6() {
			network = "udp6"
		}
		pc, err := lc.ListenPacket(ctx, network, ":0")
		if err != nil {
			return nil, nil, fmt.Errorf("opening a QUIC socket: %w", err)
		}
		tr := &quic.Transport{Conn: pc}
		qc, err := tr.Dial(ctx, net.UDPAddrFromAddrPort(dst), clientTLS(gw.Pin, gw.ServerName, []string{ALPNQUIC}), quicConfig(true))
		if err != nil {
			tr.Close()
			pc.Close()
			return nil, nil, fmt.Errorf("connecting over QUIC: %w", err)
		}
		if !qc.ConnectionState().SupportsDatagrams.Remote {
			qc.CloseWithError(0x10a, "")
			tr.Close()
			pc.Close()
			return nil, nil, errors.New("connecting over QUIC: the gateway takes no datagrams")
		}
		c := quicCloser{quicConn: &quicConn{qc: qc}, tr: tr}
		return c, c.readLoop, nil
	}
	return nil, nil, fmt.Errorf("transport: unknown transport %q", t)
}
