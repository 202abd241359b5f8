package gateway

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"veil/internal/certfile"
)

// ProxyConfig configures the gateway's HTTPS proxy for the browser
// extension: TLS, then HTTP CONNECT (and plain http:// requests in
// absolute form), admitted by a credential from the peer map. Its
// outbound connections pass the same egress guard as tunnel traffic and
// resolve names with the same resolver (Config.Lookup).
type ProxyConfig struct {
	// Port is the TCP port; zero picks a free one.
	Port int
	// Certificate is the TLS certificate. If nil, a self-signed one is
	// made at start and kept in RAM; browsers then need its pin
	// (ProxyPin), so production gateways set a real one.
	Certificate *tls.Certificate
	// MaxConns bounds the connections one credential holds open at once;
	// zero means 64 (a browser opens at most 32 to one proxy).
	MaxConns int
}

// LoadProxyConfig returns the proxy configuration for port with the
// certificate and key in the given PEM files (both empty: self-signed);
// nil when port is 0, which means no proxy.
func LoadProxyConfig(port int, certFile, keyFile string) (*ProxyConfig, error) {
	if port == 0 {
		return nil, nil
	}
	pc := &ProxyConfig{Port: port}
	if certFile != "" {
		f, err := certfile.Load(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("reading the proxy certificate: %w", err)
		}
		pc.Certificate = f.Certificate()
	}
	return pc, nil
}

// httpsProxy is the running proxy. It keeps, per credential, only the
// count and the closers of its open connections, in RAM: never a
// destination, an address or a time.
type httpsProxy struct {
	g     *Gateway
	ln    net.Listener
	srv   *http.Server
	pin   string
	max   int
	relay *httputil.ReverseProxy

	mu    sync.Mutex
	conns map[[sha256.Size]byte]*credConns
}

// credConns are one credential's open connections.
type credConns struct {
	n      int
	cancel map[*int]func() // closes one connection
}

// newHTTPSProxy listens on cfg.Port; Run serves it.
func newHTTPSProxy(g *Gateway, cfg ProxyConfig) (*httpsProxy, error) {
	cert := cfg.Certificate
	if cert == nil {
		c, err := selfSigned()
		if err != nil {
			return nil, fmt.Errorf("making proxy certificate: %w", err)
		}
		cert = c
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("reading proxy certificate: %w", err)
	}
	spki := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(cfg.Port)))
	if err != nil {
		return nil, fmt.Errorf("proxy listener: %w", err)
	}
	p := &httpsProxy{
		g: g, pin: base64.StdEncoding.EncodeToString(spki[:]),
		max:   cfg.MaxConns,
		conns: make(map[[sha256.Size]byte]*credConns),
	}
	if p.max <= 0 {
		p.max = 64
	}
	quiet := log.New(io.Discard, "", 0) // net/http would log client addresses
	p.relay = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.Header.Del("Proxy-Authorization")
			pr.Out.Header.Del("Proxy-Connection")
		},
		Transport: &http.Transport{
			DialContext:           p.dial,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       30 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second,
		},
		ErrorLog: quiet,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, dialError(err), http.StatusBadGateway)
		},
	}
	p.srv = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 15 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          quiet,
		// HTTP/1.1 only: CONNECT over HTTP/2 is a different protocol.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	p.ln = tls.NewListener(ln, &tls.Config{
		Certificates: []tls.Certificate{*cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	})
	return p, nil
}

// port is the proxy's TCP port.
func (p *httpsProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// serve serves until close.
func (p *httpsProxy) serve() {
	if err := p.srv.Serve(p.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		p.g.log.Error("https proxy stopped", "err", err)
	}
}

// close stops the listener and every open connection.
func (p *httpsProxy) close() {
	p.srv.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for h, c := range p.conns {
		for _, cancel := range c.cancel {
			cancel()
		}
		delete(p.conns, h)
	}
}

// ServeHTTP admits a request by its credential and carries it out.
func (p *httpsProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, ok := p.credential(r)
	if !ok {
		w.Header().Set("Proxy-Authenticate", `Basic realm="Veil"`)
		http.Error(w, "proxy credential missing, wrong or expired", http.StatusProxyAuthRequired)
		return
	}
	switch {
	case r.Method == http.MethodConnect:
		p.connect(w, r, h)
	case r.URL.IsAbs() && r.URL.Scheme == "http":
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		release, ok := p.acquire(h, cancel)
		if !ok {
			http.Error(w, "too many connections for this device", http.StatusTooManyRequests)
			return
		}
		defer release()
		p.relay.ServeHTTP(w, r.WithContext(ctx))
	default:
		http.Error(w, "this proxy takes CONNECT and http:// requests only", http.StatusBadRequest)
	}
}

// credential returns the hash of the request's Basic credential if the
// peer map lets it in.
func (p *httpsProxy) credential(r *http.Request) ([sha256.Size]byte, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Proxy-Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return [sha256.Size]byte{}, false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(token))
	if err != nil {
		return [sha256.Size]byte{}, false
	}
	_, password, ok := strings.Cut(string(raw), ":")
	if !ok || password == "" {
		return [sha256.Size]byte{}, false
	}
	h := sha256.Sum256([]byte(password))
	p.g.mu.Lock()
	defer p.g.mu.Unlock()
	return h, p.g.peers.proxyAllowed(h)
}

// acquire counts one more open connection of credential h, with cancel
// to close it if the credential leaves the peer map; false when it holds
// MaxConns already.
func (p *httpsProxy) acquire(h [sha256.Size]byte, cancel func()) (release func(), ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.conns[h]
	if c == nil {
		c = &credConns{cancel: make(map[*int]func())}
		p.conns[h] = c
	}
	if c.n >= p.max {
		return nil, false
	}
	c.n++
	id := new(int)
	c.cancel[id] = cancel
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		delete(c.cancel, id)
		if c.n--; c.n == 0 {
			delete(p.conns, h)
		}
	}, true
}

// revoke closes the open connections of credentials that allowed no
// longer admits: an account that expired loses its proxy at the peer
// map's next sync, open tunnels included.
func (p *httpsProxy) revoke(allowed func([sha256.Size]byte) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for h, c := range p.conns {
		if allowed(h) {
			continue
		}
		for _, cancel := range c.cancel {
			cancel()
		}
	}
}

// connect opens a tunnel to the request's host:port.
func (p *httpsProxy) connect(w http.ResponseWriter, r *http.Request, h [sha256.Size]byte) {
	var closeOnce sync.Once
	var out net.Conn
	var in net.Conn
	done := make(chan struct{})
	cancelDial, stopDial := context.WithCancel(r.Context())
	defer stopDial()
	shut := func() {
		closeOnce.Do(func() {
			close(done)
			stopDial()
		})
	}
	release, ok := p.acquire(h, shut)
	if !ok {
		http.Error(w, "too many connections for this device", http.StatusTooManyRequests)
		return
	}
	defer release()
	ctx, cancel := context.WithTimeout(cancelDial, dialTimeout)
	out, err := p.dial(ctx, "tcp", r.Host)
	cancel()
	if err != nil {
		http.Error(w, dialError(err), http.StatusBadGateway)
		return
	}
	defer out.Close()
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "cannot tunnel here", http.StatusInternalServerError)
		return
	}
	in, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	defer in.Close()
	if _, err := io.WriteString(in, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	go func() {
		<-done
		in.Close()
		out.Close()
	}()
	defer shut()
	relayBuffered(in, buf.Reader, out)
}

// relayBuffered copies both ways between the client (whose reader may
// hold bytes read past the request) and the destination until either
// side ends.
func relayBuffered(in net.Conn, br *bufio.Reader, out net.Conn) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		io.Copy(out, br)
		if tc, ok := out.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	}()
	io.Copy(in, out)
	in.Close()
	out.Close()
	wg.Wait()
}

// dial connects to address (host:port) from the gateway: the name
// resolved by the gateway's resolver, every address judged by the egress
// guard, as for tunnel traffic.
func (p *httpsProxy) dial(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("bad destination: %w", err)
	}
	p.g.mu.Lock()
	guard, known := p.g.guard, len(p.g.tunnel.pools) > 0
	p.g.mu.Unlock()
	if !known {
		return nil, errProxyNotReady
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		addrs = []netip.Addr{a}
	} else if addrs, err = p.g.lookup(ctx, host); err != nil {
		return nil, err
	}
	d := guard.Dialer(&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second})
	var first error
	for _, a := range addrs {
		if err := guard.Permit(a); err != nil {
			first = cmp(first, err)
			continue
		}
		c, err := d.DialContext(ctx, network, net.JoinHostPort(a.Unmap().String(), port))
		if err == nil {
			return c, nil
		}
		first = cmp(first, err)
	}
	if first == nil {
		first = errNoAddress
	}
	return nil, first
}

func cmp(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

var (
	errProxyNotReady = errors.New("the gateway is not ready yet")
	errNoAddress     = errors.New("the name has no address")
)

// dialError is what the browser is told when a destination cannot be
// reached; it names no address.
func dialError(err error) string {
	switch {
	case isDenied(err):
		return "this destination is not reachable through Veil"
	case errors.Is(err, errNoAddress), errors.Is(err, errLookup):
		return "the destination's name does not resolve"
	default:
		return "the destination did not answer"
	}
}

// selfSigned makes an ECDSA certificate valid for a year, for a gateway
// without one of its own.
func selfSigned() (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "Veil gateway proxy"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
