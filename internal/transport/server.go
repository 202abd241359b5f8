package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/net/http2"
	"golang.zx2c4.com/wireguard/conn"
)

// handshakeTimeout bounds a new connection's TLS or QUIC handshake and,
// on TLS, the arrival of its first bytes: a client that trickles them
// (slowloris) loses the connection.
const handshakeTimeout = 10 * time.Second

// DefaultMaxConns is ServerConfig.MaxConns's default.
const DefaultMaxConns = 4096

// ServerConfig configures a gateway's ServerBind.
type ServerConfig struct {
	// UDP serves plain WireGuard. If nil, wireguard-go's default bind.
	UDP conn.Bind
	// TLSAddr, if not empty, is the TCP address ("host:port", ":443")
	// where WireGuard over TLS is served beside an HTTPS page.
	TLSAddr string
	// QUICAddr, if not empty, is the UDP address where WireGuard over QUIC
	// is served. It must differ from the WireGuard port.
	QUICAddr string
	// Certificate is the TLS and QUIC certificate; required when either
	// address is set (SelfSigned makes one).
	Certificate tls.Certificate
	// Page answers the HTTPS requests that reach the TLS port, so that it
	// looks like the web server it is to a prober. If nil, a plain page.
	Page http.Handler
	// MaxConns bounds the TLS and QUIC connections open at once; zero
	// means DefaultMaxConns.
	MaxConns int
	// FirstBytes bounds a TLS connection's handshake and the arrival of
	// its first bytes; zero means 10 s.
	FirstBytes time.Duration
	// Logger receives listener errors, never an address. If nil, nothing
	// is logged.
	Logger *slog.Logger
}

// ServerBind is a gateway's conn.Bind: plain UDP from the wrapped bind,
// and every TLS or QUIC connection an Endpoint of its own, so that a
// peer's replies go back the way its messages came.
type ServerBind struct {
	cfg     ServerConfig
	tlsConf *tls.Config
	log     *slog.Logger
	slots   chan struct{}

	mu    sync.Mutex
	run   *serverRun // nil while closed
	tlsLn net.Addr
	quic  net.Addr
}

// serverRun is what one Open started and Close stops.
type serverRun struct {
	q      *queue
	ctx    context.Context
	cancel context.CancelFunc
	tlsLn  net.Listener
	quicLn *quic.Listener
	page   *http.Server
	pageLn *chanListener
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[msgConn]struct{}
}

var _ conn.Bind = (*ServerBind)(nil)

// NewServerBind checks cfg; listening starts at Open.
func NewServerBind(cfg ServerConfig) (*ServerBind, error) {
	if cfg.UDP == nil {
		cfg.UDP = conn.NewDefaultBind()
	}
	if (cfg.TLSAddr != "" || cfg.QUICAddr != "") && len(cfg.Certificate.Certificate) == 0 {
		return nil, errors.New("transport: TLS or QUIC without a certificate")
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.FirstBytes <= 0 {
		cfg.FirstBytes = handshakeTimeout
	}
	if cfg.Page == nil {
		cfg.Page = http.HandlerFunc(plainPage)
	}
	b := &ServerBind{cfg: cfg, log: cfg.Logger, slots: make(chan struct{}, cfg.MaxConns)}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.tlsConf = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cfg.Certificate},
		NextProtos:   []string{"h2", "http/1.1"},
	}
	return b, nil
}

// plainPage is what a browser sees at the TLS port.
func plainPage(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, "<!doctype html>\n<html><head><title>Welcome</title></head><body><h1>Welcome</h1><p>This server is up.</p></body></html>\n")
}

// TLSAddr returns the TLS listener's address while open, else nil.
func (b *ServerBind) TLSAddr() net.Addr {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.tlsLn
}

// QUICAddr returns the QUIC listener's address while open, else nil.
func (b *ServerBind) QUICAddr() net.Addr {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.quic
}

// Open opens the UDP bind and the TLS and QUIC listeners.
func (b *ServerBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.run != nil {
		return nil, 0, conn.ErrBindAlreadyOpen
	}
	fns, port, err := b.cfg.UDP.Open(port)
	if err != nil {
		return nil, 0, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &serverRun{q: newQueue(), ctx: ctx, cancel: cancel, conns: map[msgConn]struct{}{}}
	fail := func(err error) ([]conn.ReceiveFunc, uint16, error) {
		b.stop(r)
		b.cfg.UDP.Close()
		return nil, 0, err
	}
	if b.cfg.TLSAddr != "" {
		if r.tlsLn, err = ListenShared(b.cfg.TLSAddr); err != nil {
			return fail(fmt.Errorf("listening for WireGuard over TLS: %w", err))
		}
		r.pageLn = newChanListener(r.tlsLn.Addr())
		r.page = &http.Server{
			Handler:           b.cfg.Page,
			ReadHeaderTimeout: handshakeTimeout,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       30 * time.Second,
			MaxHeaderBytes:    8 << 10,
			ErrorLog:          slog.NewLogLogger(slog.DiscardHandler, slog.LevelError),
		}
		r.wg.Add(2)
		go func() { defer r.wg.Done(); r.page.Serve(r.pageLn) }()
		go func() { defer r.wg.Done(); b.acceptTLS(r) }()
		b.tlsLn = r.tlsLn.Addr()
	}
	if b.cfg.QUICAddr != "" {
		qtls := b.tlsConf.Clone()
		qtls.NextProtos = []string{ALPNQUIC}
		if r.quicLn, err = quic.ListenAddr(b.cfg.QUICAddr, qtls, quicConfig(false)); err != nil {
			return fail(fmt.Errorf("listening for WireGuard over QUIC: %w", err))
		}
		r.wg.Add(1)
		go func() { defer r.wg.Done(); b.acceptQUIC(r) }()
		b.quic = r.quicLn.Addr()
	}
	b.run = r
	return append(fns, r.q.receive), port, nil
}

// Close stops the listeners, closes every connection and the UDP bind.
func (b *ServerBind) Close() error {
	b.mu.Lock()
	r := b.run
	b.run, b.tlsLn, b.quic = nil, nil, nil
	b.mu.Unlock()
	if r != nil {
		b.stop(r)
	}
	return b.cfg.UDP.Close()
}

func (b *ServerBind) stop(r *serverRun) {
	r.q.close()
	r.cancel()
	if r.tlsLn != nil {
		r.tlsLn.Close()
	}
	if r.quicLn != nil {
		r.quicLn.Close()
	}
	if r.page != nil {
		r.page.Close()
	}
	r.mu.Lock()
	for c := range r.conns {
		c.close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// SetMark marks the UDP bind's packets.
func (b *ServerBind) SetMark(mark uint32) error { return b.cfg.UDP.SetMark(mark) }

// ParseEndpoint parses a UDP endpoint: the gateway configures none of
// its own.
func (b *ServerBind) ParseEndpoint(s string) (conn.Endpoint, error) {
	return b.cfg.UDP.ParseEndpoint(s)
}

// BatchSize is the UDP bind's.
func (b *ServerBind) BatchSize() int { return b.cfg.UDP.BatchSize() }

// Send sends on the connection ep came from, or over UDP.
func (b *ServerBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	if ce, ok := ep.(*connEndpoint); ok {
		return ce.c.send(bufs)
	}
	return b.cfg.UDP.Send(bufs, ep)
}

// acquire takes a connection slot, or reports that all are taken.
func (b *ServerBind) acquire() bool {
	select {
	case b.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (b *ServerBind) release() { <-b.slots }

// track adds or removes a live connection, for Close; false once closed.
func (r *serverRun) track(c msgConn, add bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !add {
		delete(r.conns, c)
		return true
	}
	if r.ctx.Err() != nil {
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (b *ServerBind) acceptTLS(r *serverRun) {
	for {
		c, err := r.tlsLn.Accept()
		if err != nil {
			if r.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			b.log.Warn("accepting a TLS connection failed", "err", "accept")
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if !b.acquire() {
			c.Close()
			continue
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if !b.serveTLS(r, c) {
				b.release()
			}
		}()
	}
}

// serveTLS does the handshake and looks at the first bytes: a framed
// WireGuard message makes it a WireGuard stream, anything else goes to
// the HTTPS page. It reports whether the page took over the connection
// (and with it the slot, released when that connection closes).
func (b *ServerBind) serveTLS(r *serverRun, raw net.Conn) (handedOver bool) {
	raw.SetDeadline(time.Now().Add(b.cfg.FirstBytes))
	tc := tls.Server(raw, b.tlsConf)
	if err := tc.HandshakeContext(r.ctx); err != nil {
		raw.Close()
		return false
	}
	br := bufio.NewReaderSize(tc, 64<<10)
	head, err := br.Peek(sniffLen)
	if len(head) == 0 || (err != nil && !looksLikeHTTP(head)) {
		tc.Close()
		return false
	}
	raw.SetDeadline(time.Time{})
	if !looksLikeWireGuard(head) {
		pc := &pageConn{Conn: tc, r: br, release: b.release}
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			h := h2Conn{pc}
			if !r.track(h, true) {
				pc.Close()
				return true
			}
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				defer r.track(h, false)
				defer pc.Close()
				(&http2.Server{IdleTimeout: 30 * time.Second}).ServeConn(pc, &http2.ServeConnOpts{Context: r.ctx, BaseConfig: r.page, Handler: r.page.Handler})
			}()
			return true
		}
		if !r.pageLn.offer(pc) {
			pc.Close()
		}
		return true
	}
	sc := newStreamConn(tc, br)
	if !r.track(sc, true) {
		tc.Close()
		return false
	}
	sc.readLoop(r.q, &connEndpoint{c: sc, dst: unmap(addrPort(raw.RemoteAddr()))})
	r.track(sc, false)
	tc.Close()
	return false
}

// looksLikeHTTP reports whether a short first read could be the start of
// an HTTP request (an ASCII letter), worth handing to the page.
func looksLikeHTTP(b []byte) bool {
	return len(b) > 0 && b[0] >= 'A' && b[0] <= 'Z'
}

func (b *ServerBind) acceptQUIC(r *serverRun) {
	for {
		qc, err := r.quicLn.Accept(r.ctx)
		if err != nil {
			return
		}
		if !b.acquire() {
			qc.CloseWithError(0x101, "")
			continue
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer b.release()
			if !qc.ConnectionState().SupportsDatagrams.Remote {
				qc.CloseWithError(0x10a, "")
				return
			}
			c := &quicConn{qc: qc}
			if !r.track(c, true) {
				c.close()
				return
			}
			c.readLoop(r.q, &connEndpoint{c: c, dst: unmap(addrPort(qc.RemoteAddr()))})
			r.track(c, false)
			c.close()
		}()
	}
}

// pageConn is a TLS connection handed to the HTTPS page with the bytes
// already peeked at; closing it frees its slot.
type pageConn struct {
	net.Conn
	r       *bufio.Reader
	release func()
	once    sync.Once
}

func (c *pageConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *pageConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// h2Conn lets Close end an HTTP/2 page connection, which no
// http.Server tracks.
type h2Conn struct{ *pageConn }

func (h h2Conn) send([][]byte) error { return net.ErrClosed }
func (h h2Conn) close()              { h.Close() }

// chanListener hands connections to an http.Server.
type chanListener struct {
	addr   net.Addr
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), closed: make(chan struct{})}
}

// offer hands c to the server; false once closed.
func (l *chanListener) offer(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.closed:
		return false
	}
}

// Accept waits for the next offered connection.
func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close stops Accept.
func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

// Addr is the TLS listener's.
func (l *chanListener) Addr() net.Addr { return l.addr }
