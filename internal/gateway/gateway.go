// Package gateway runs a Veil gateway: a WireGuard device whose peers
// follow the control plane's peer map, whose tunnel traffic goes out to
// the internet through the egress guard, and whose resolver answers inside
// the tunnel. It keeps its state in RAM only and logs aggregate counters,
// never a peer, an address or a destination (promises P1, P3).
//
// Two data planes: "netstack" (no root) terminates the tunnel in a gVisor
// stack and carries each flow out through ordinary host sockets; "tun"
// (root) uses a kernel TUN with IP forwarding and masquerade in an
// nftables table of its own.
package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.zx2c4.com/wireguard/conn"

	"veil/internal/apitypes"
	"veil/internal/netguard"
	"veil/internal/transport"
	"veil/internal/wg"
)

// Modes of Config.Mode.
const (
	ModeNetstack = "netstack"
	ModeTUN      = "tun"
)

// Config configures a gateway.
type Config struct {
	// ControlURL is the control plane's base URL, e.g. "https://veil.example".
	ControlURL string
	// Token is the gateway's bearer token from `veil admin gateway add`.
	Token string
	// Mode is ModeNetstack (the default when empty) or ModeTUN (root).
	Mode string
	// ListenPort is the WireGuard UDP port; zero picks a free one.
	ListenPort int
	// TLSPort and QUICPort, if not zero, are the TCP port of WireGuard
	// over TLS (which also answers HTTPS with a plain page) and the UDP
	// port of WireGuard over QUIC, reported to the control plane with the
	// certificate's pin. Zero turns one off.
	TLSPort, QUICPort int
	// Certificate is what TLS and QUIC present. If nil while a port is
	// set, a self-signed one is made and kept in RAM.
	Certificate *tls.Certificate
	// PrivateKey is the WireGuard key. If zero, one is generated at start
	// and kept in RAM only; peers learn the new key from the control plane.
	PrivateKey wg.Key
	// EgressAllow lists ranges that tunnel traffic may reach although the
	// egress guard would refuse them (--egress-allow).
	EgressAllow []netip.Prefix
	// Egress are the public addresses the gateway's traffic leaves from,
	// reported to the control plane so that My IP and the DNS leak test
	// recognise them. If empty, the host's public source addresses are
	// reported.
	Egress []netip.Addr
	// Resolver answers DNS on the gateway's tunnel addresses, port 53, UDP
	// and TCP, for peers only. If nil, no DNS is served.
	Resolver dns.Handler
	// EncryptedDNS, if set, also serves DNS over TLS on the tunnel
	// addresses' port 853 and DNS over HTTPS on their port 443, at
	// /dns-query, for peers only. NewWithResolver sets it from
	// DNSCertificate.
	EncryptedDNS EncryptedDNS
	// DNSCertificate is the certificate of DNS over TLS and HTTPS on the
	// tunnel addresses (see certfile.Files.GetCertificate). If nil, NewWithResolver
	// serves plain DNS only.
	DNSCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// Lookup resolves the HTTPS proxy's destination names. If nil, the
	// host's resolver is used; NewWithResolver sets the gateway's own.
	Lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	// Proxy runs the HTTPS proxy for the browser extension. If nil, none.
	Proxy *ProxyConfig
	// DisablePQ turns off the post-quantum key exchange (package pq) on
	// the tunnel addresses; clients then keep tunnels without a
	// pre-shared key.
	DisablePQ bool
	// HTTPClient talks to the control plane. If nil, a client with dial
	// and handshake timeouts is used (each request has its own deadline).
	HTTPClient *http.Client
	// Logger receives aggregate events only. If nil, nothing is logged.
	Logger *slog.Logger

	// TUNName is the kernel interface in tun mode; empty means "veil0".
	TUNName string
	// ReportEvery is the interval of load reports; zero means 30 s.
	ReportEvery time.Duration
	// PollWait is the long-poll wait sent to the control plane; zero
	// means 25 s.
	PollWait time.Duration
	// RetryMax caps the backoff between failed control-plane calls; zero
	// means 30 s.
	RetryMax time.Duration
	// MaxPeers bounds the peers active at once on the device; zero means
	// wg.MaxPeers, the most a WireGuard device holds. The authorised set
	// has no such bound: a device is put on the WireGuard device only by
	// its first valid handshake.
	MaxPeers int
	// IdleTimeout is how long an active peer stays on the device without
	// a handshake (WireGuard rekeys every 2 minutes while traffic flows);
	// zero means 5 minutes. Its next handshake brings it back.
	IdleTimeout time.Duration
}

// Stats are the gateway's aggregate counters; nothing per peer.
type Stats struct {
	// Peers are the peers active on the device; Authorized the devices
	// the peer map lets in.
	Peers      int
	Authorized int
	RxBytes    uint64
	TxBytes    uint64
	// PeerMapVersion is the version of the peer map last applied.
	PeerMapVersion int64
}

// Gateway is a running gateway. Create it with New, then call Run.
type Gateway struct {
	cfg    Config
	log    *slog.Logger
	http   *http.Client
	priv   wg.Key
	dev    *wg.Device
	bind   *transport.ServerBind // nil without TLS and QUIC
	pin    string
	plane  dataPlane
	ready  chan struct{}
	closed sync.Once

	// Set once the control plane has answered the first report.
	tunnel tunnelConfig
	guard  netguard.Guard

	proxy *httpsProxy // nil without Config.Proxy
	// relays are the multihop forwarding ports this gateway holds as an
	// entry (relay.go).
	relays *relays

	pq *http.Server // the post-quantum key exchange; nil if off

	mu    sync.Mutex
	peers peerState
	// fullSince is when the device last refused a peer for want of
	// room, so that the log says so once a minute, not per handshake.
	fullSince time.Time
}

// dataPlane is what a mode sets up around the WireGuard device.
type dataPlane interface {
	// start gives the data plane the gateway's own tunnel addresses and
	// pools once known, and starts forwarding and DNS.
	start(ctx context.Context, tc tunnelConfig) error
	// close undoes everything start and the constructor did.
	close() error
	// listen opens a TCP listener on one of the gateway's tunnel
	// addresses, for peers only.
	listen(netip.AddrPort) (net.Listener, error)
}

// tunnelConfig is what the control plane tells a gateway about itself.
type tunnelConfig struct {
	name  string
	addrs []netip.Prefix // own addresses with pool length: 10.64.0.1/10
	pools []netip.Prefix // the same, masked: 10.64.0.0/10
}

// New checks cfg and creates the WireGuard device, so that Port is known
// before Run. In tun mode it needs root (CAP_NET_ADMIN).
func New(cfg Config) (*Gateway, error) {
	if cfg.ControlURL == "" {
		return nil, errors.New("gateway: no control plane URL")
	}
	if cfg.Token == "" {
		return nil, errors.New("gateway: no token")
	}
	if cfg.Mode == "" {
		cfg.Mode = ModeNetstack
	}
	if cfg.Mode != ModeNetstack && cfg.Mode != ModeTUN {
		return nil, fmt.Errorf("gateway: unknown mode %q (want %s or %s)", cfg.Mode, ModeNetstack, ModeTUN)
	}
	if cfg.TUNName == "" {
		cfg.TUNName = "veil0"
	}
	if cfg.ReportEvery <= 0 {
		cfg.ReportEvery = 30 * time.Second
	}
	if cfg.PollWait <= 0 {
		cfg.PollWait = 25 * time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 30 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 5 * time.Minute
	}
	cfg.ControlURL = strings.TrimRight(cfg.ControlURL, "/")
	g := &Gateway{
		cfg:   cfg,
		log:   cfg.Logger,
		http:  cfg.HTTPClient,
		priv:  cfg.PrivateKey,
		ready: make(chan struct{}),
		peers: newPeerState(),
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	g.log = g.log.With("component", "gateway")
	if g.http == nil {
		g.http = &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout: 10 * time.Second,
			IdleConnTimeout:     90 * time.Second,
		}}
	}
	if g.priv.IsZero() {
		k, err := wg.GenerateKey()
		if err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		g.priv = k
	}

	var err error
	var tunDev tunDevice
	switch cfg.Mode {
	case ModeNetstack:
		g.plane, tunDev, err = newNetstackPlane(g)
	case ModeTUN:
		g.plane, tunDev, err = newTUNPlane(g)
	}
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	var bind conn.Bind
	if cfg.TLSPort > 0 || cfg.QUICPort > 0 {
		if bind, err = g.newTransports(); err != nil {
			g.plane.close()
			return nil, fmt.Errorf("gateway: %w", err)
		}
	}
	bind = g.relayBind(bind)
	g.dev, err = wg.NewDevice(wg.DeviceConfig{
		TUN:        &limitedTUN{Device: tunDev, caps: g.peers.caps},
		Bind:       bind,
		PrivateKey: g.priv,
		ListenPort: cfg.ListenPort,
		Logger:     g.log,
		Admit:      admitter{g},
	})
	if err != nil {
		g.plane.close()
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if cfg.Proxy != nil {
		if g.proxy, err = newHTTPSProxy(g, *cfg.Proxy); err != nil {
			g.dev.Close()
			g.plane.close()
			return nil, fmt.Errorf("gateway: %w", err)
		}
	}
	return g, nil
}

// newTransports makes the bind that serves WireGuard over TLS and QUIC
// beside plain UDP; on-demand admission wraps it like the plain bind.
func (g *Gateway) newTransports() (conn.Bind, error) {
	cert := g.cfg.Certificate
	if cert == nil {
		c, err := transport.SelfSigned("")
		if err != nil {
			return nil, err
		}
		cert = &c
	}
	pin, err := transport.CertPin(*cert)
	if err != nil {
		return nil, err
	}
	sc := transport.ServerConfig{Certificate: *cert, Logger: g.log}
	if g.cfg.TLSPort > 0 {
		sc.TLSAddr = net.JoinHostPort("", strconv.Itoa(g.cfg.TLSPort))
	}
	if g.cfg.QUICPort > 0 {
		sc.QUICAddr = net.JoinHostPort("", strconv.Itoa(g.cfg.QUICPort))
	}
	b, err := transport.NewServerBind(sc)
	if err != nil {
		return nil, err
	}
	g.bind, g.pin = b, pin
	return b, nil
}

// transports returns the TLS and QUIC ports the gateway listens on and
// the certificate pin, for the report; zeros without either.
func (g *Gateway) transports() (tlsPort, quicPort int, pin string) {
	if g.bind == nil {
		return 0, 0, ""
	}
	if a, ok := g.bind.TLSAddr().(*net.TCPAddr); ok {
		tlsPort = a.Port
	}
	if a, ok := g.bind.QUICAddr().(*net.UDPAddr); ok {
		quicPort = a.Port
	}
	return tlsPort, quicPort, g.pin
}

// ProxyPort returns the HTTPS proxy's TCP port; 0 without one.
func (g *Gateway) ProxyPort() int {
	if g.proxy == nil {
		return 0
	}
	return g.proxy.port()
}

// ProxyPin returns the base64 SHA-256 of the HTTPS proxy certificate's
// public key (what Chromium's --ignore-certificate-errors-spki-list
// takes); empty without a proxy.
func (g *Gateway) ProxyPin() string {
	if g.proxy == nil {
		return ""
	}
	return g.proxy.pin
}

// Port returns the WireGuard UDP port.
func (g *Gateway) Port() int {
	p, err := g.dev.Port()
	if err != nil {
		return 0
	}
	return p
}

// PublicKey returns the gateway's WireGuard public key.
func (g *Gateway) PublicKey() wg.Key { return g.priv.Public() }

// Ready is closed once the control plane has told the gateway its tunnel
// addresses and the data plane is forwarding.
func (g *Gateway) Ready() <-chan struct{} { return g.ready }

// InTunnel reports whether addr lies in the gateway's tunnel pools, that
// is, could be one of its peers; false before the control plane has
// answered. It fits resolver.Config.Allow.
func (g *Gateway) InTunnel(addr netip.Addr) bool {
	addr = addr.Unmap()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range g.tunnel.pools {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// PermitUpstream reports whether the gateway's own resolver may send to
// addr: the egress guard's decision, as for tunnel traffic. Until the
// control plane has told the gateway its tunnel pools it refuses
// everything, since it cannot yet tell a peer's address. It fits
// resolver.Config.Egress.
func (g *Gateway) PermitUpstream(addr netip.Addr) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.tunnel.pools) == 0 {
		return fmt.Errorf("tunnel pools not yet known: %w", netguard.ErrDenied)
	}
	return g.guard.Permit(addr)
}

func (g *Gateway) maxPeers() int {
	if g.cfg.MaxPeers > 0 {
		return g.cfg.MaxPeers
	}
	return wg.MaxPeers
}

// Carries reports whether a TCP connection arriving from remote was opened
// by this gateway on a peer's behalf: remote is the host-side end of one
// of its live outbound sockets. Only netstack mode can tell (in tun mode
// the kernel translates the addresses); it knows nothing about which peer.
// The web tools use it to tell a visitor "you are protected".
func (g *Gateway) Carries(remote netip.AddrPort) bool {
	p, ok := g.plane.(*netstackPlane)
	return ok && p.carries(remote)
}

// BlockFor returns the DNS blocking categories of the peer whose tunnel
// address is addr. It fits resolver.Config.BlockPolicy.
func (g *Gateway) BlockFor(addr netip.Addr) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.peers.blockFor(addr)
}

// Stats returns the aggregate counters.
func (g *Gateway) Stats() Stats {
	st, _ := g.dev.Stats()
	g.mu.Lock()
	v, n := g.peers.version, len(g.peers.peers)
	g.mu.Unlock()
	return Stats{Peers: st.Peers, Authorized: n, RxBytes: st.RxBytes, TxBytes: st.TxBytes, PeerMapVersion: v}
}

// Run serves until ctx ends, then returns nil after removing the device, the data plane's
// interfaces and rules, and every peer (which lived in RAM only). A
// Gateway runs once.
func (g *Gateway) Run(ctx context.Context) error {
	defer g.shutdown()

	gc, err := g.firstReport(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before the control plane answered
		}
		return err
	}
	tc, err := parseTunnelConfig(gc)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	g.mu.Lock()
	g.tunnel = tc
	g.guard = netguard.Guard{Allow: g.cfg.EgressAllow, Deny: tc.pools}
	g.mu.Unlock()
	if err := g.plane.start(ctx, tc); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	if err := g.startPQ(tc, g.plane.listen); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	g.log.Info("gateway up", "mode", g.cfg.Mode, "port", g.Port())
	var wg sync.WaitGroup
	if g.proxy != nil {
		g.log.Info("https proxy up", "port", g.proxy.port(), "pin", g.proxy.pin)
		go g.proxy.serve() // until shutdown closes it
	}
	close(g.ready)

	wg.Add(4)
	go func() { defer wg.Done(); g.relays.run(ctx) }()
	go func() { defer wg.Done(); g.reportLoop(ctx) }()
	go func() { defer wg.Done(); g.syncLoop(ctx) }()
	go func() { defer wg.Done(); g.idleLoop(ctx) }()
	wg.Wait()
	return nil
}

func (g *Gateway) shutdown() {
	g.closed.Do(func() {
		if g.proxy != nil {
			g.proxy.close()
		}
		g.stopPQ()
		// The data plane first, so that its servers stop before the
		// device closes the TUN under them.
		if err := g.plane.close(); err != nil {
			g.log.Error("cleaning up data plane", "err", err)
		}
		g.dev.Close()
		g.mu.Lock()
		g.peers = newPeerState()
		g.mu.Unlock()
		g.log.Info("gateway stopped")
	})
}

// parseTunnelConfig reads the gateway's own tunnel addresses.
func parseTunnelConfig(gc apitypes.GatewayConfig) (tunnelConfig, error) {
	tc := tunnelConfig{name: gc.Name}
	for _, s := range []string{gc.TunnelIPv4, gc.TunnelIPv6} {
		if s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return tunnelConfig{}, fmt.Errorf("control plane sent a bad tunnel address: %w", err)
		}
		tc.addrs = append(tc.addrs, p)
		tc.pools = append(tc.pools, p.Masked())
	}
	if len(tc.addrs) == 0 {
		return tunnelConfig{}, errors.New("control plane sent no tunnel address")
	}
	return tc, nil
}

// sleep waits d or until ctx ends, reporting whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// backoff doubles d up to max.
func backoff(d, max time.Duration) time.Duration {
	if d == 0 {
		return min(250*time.Millisecond, max)
	}
	return min(2*d, max)
}

// admitter puts an authorised device on the WireGuard device when its
// handshake initiation arrives (wg.DeviceConfig.Admit).
type admitter struct{ g *Gateway }

// Admit implements wg.Admitter.
func (a admitter) Admit(key wg.Key) {
	g := a.g
	g.mu.Lock()
	defer g.mu.Unlock()
	p, verdict := g.peers.admit(key, g.maxPeers())
	switch verdict {
	case admitNoRoom:
		if now := time.Now(); now.Sub(g.fullSince) > time.Minute {
			g.fullSince = now
			g.log.Warn("active peers at the device's limit; new devices' handshakes are refused until some go idle",
				"active", len(g.peers.active), "max", g.maxPeers())
		}
		return
	case admitNo:
		return
	}
	if err := g.dev.SetPeer(p); err != nil {
		g.log.Warn("adding an active peer failed", "err", err)
		return
	}
	g.peers.activate(key, time.Now())
}

// idleLoop takes peers off the device once idle (Config.IdleTimeout).
func (g *Gateway) idleLoop(ctx context.Context) {
	every := min(g.cfg.IdleTimeout/4, 30*time.Second)
	for sleep(ctx, every) {
		live, err := g.dev.Peers()
		if err != nil {
			continue
		}
		g.mu.Lock()
		idle := g.peers.idle(live, time.Now(), g.cfg.IdleTimeout)
		if len(idle) > 0 {
			if err := g.dev.UpdatePeers(nil, idle); err != nil {
				g.log.Warn("removing idle peers failed", "err", err)
			} else {
				for _, k := range idle {
					g.peers.deactivate(k)
				}
			}
		}
		g.mu.Unlock()
	}
}
