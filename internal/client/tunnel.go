package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/conn"

	"veil/internal/apitypes"
	"veil/internal/transport"
	"veil/internal/wg"
)

// Modes of TunnelConfig.Mode.
const (
	// ModeTUN routes the whole system through a kernel TUN (root).
	ModeTUN = "tun"
	// ModeProxy runs the tunnel on a userspace stack and offers it as
	// local SOCKS5 and HTTP proxies (no root).
	ModeProxy = "proxy"
)

// Defaults of TunnelConfig.
const (
	DefaultSOCKS     = "127.0.0.1:1080"
	DefaultHTTPProxy = "127.0.0.1:8118"
	DefaultTUNName   = "veil0"
	// DefaultResolvConf is the file tun mode points at the gateway's
	// resolver.
	DefaultResolvConf = "/etc/resolv.conf"
	// DefaultFwmark marks the WireGuard socket's packets, and numbers the
	// routing table, as wg-quick does (51820).
	DefaultFwmark = 0xca6c
	// keepalive keeps NAT mappings open and makes the first handshake
	// start at once.
	keepalive = 25 * time.Second
)

// TunnelConfig says which tunnel to bring up.
type TunnelConfig struct {
	// State is the saved login: key and tunnel addresses.
	State *State
	// Server is the chosen gateway.
	Server apitypes.Server
	// Mode is ModeTUN or ModeProxy.
	Mode string
	// SOCKS and HTTPProxy are the proxy mode listeners; empty means the
	// defaults; "off" disables one.
	SOCKS, HTTPProxy string
	// KillSwitch installs the nftables kill switch (tun mode only).
	KillSwitch bool
	// Dir is the state directory, where tun mode keeps its record and the
	// DNS backup for `veil disconnect`.
	Dir string
	// TUNName is the interface name in tun mode; empty means "veil0".
	TUNName string
	// ResolvConf is the resolver file tun mode rewrites; empty means
	// /etc/resolv.conf.
	ResolvConf string
	// HandshakeTimeout bounds the wait for the first handshake; zero
	// means 20 s.
	HandshakeTimeout time.Duration
	// Logger receives events without addresses or keys. If nil, nothing
	// is logged.
	Logger *slog.Logger

	// Location is what the user asked for (--location): when Watch finds
	// Server gone or offline it picks another by the same rule
	// (PickServer). If empty, Server's own location: never a gateway
	// elsewhere than the one the user connected to.
	Location string
	// StaleAfter is how old the last handshake may grow before Watch
	// checks the server list again. WireGuard renews its session every
	// two minutes while the keepalive runs; zero means 3 minutes.
	StaleAfter time.Duration
	// KeyRotation is how often Hold replaces the device key in place
	// (RotateKey), counted from State.KeyCreated; zero: never.
	KeyRotation time.Duration
	// Servers fetches the gateway list for Watch. If nil, the control
	// plane in State is asked (in tun mode over a socket that bypasses the
	// tunnel, which the kill switch lets through only while reconnecting).
	Servers func(ctx context.Context) ([]apitypes.Server, error)

	// Transport is how WireGuard reaches the gateway: transport.UDP (the
	// default when empty), TLS, QUIC, or Auto (UDP, then QUIC, then TLS,
	// whichever the gateway offers, until one gets a handshake).
	Transport string

	// MTU is the tunnel's MTU. Zero means probe: tun mode starts at
	// wg.DefaultMTU and lowers it to what the path to the gateway
	// carries (findMTU); proxy mode keeps wg.DefaultMTU.
	MTU int
	// Via is the entry gateway of a multihop tunnel (multihop.go): the
	// WireGuard session is with Server, its UDP relayed by Via. If nil,
	// the tunnel goes straight to Server.
	Via *apitypes.Server

	// Bind carries the WireGuard UDP (proxy mode). If nil, wireguard-go's
	// default bind on the host's sockets is used; tests pass one bound to
	// a chosen source address.
	Bind conn.Bind
	// AllowLoopback lets proxy-mode connections to loopback addresses
	// enter the tunnel, which the userspace stack drops by default. Only
	// in-process tests want it, to reach test servers on the gateway's
	// loopback.
	AllowLoopback bool

	// NoPQ turns off the post-quantum pre-shared key (package pq), which
	// is otherwise agreed with every gateway that offers it.
	NoPQ bool
}

// Status is what `veil status` shows.
type Status struct {
	Mode     string `json:"mode"`
	Gateway  string `json:"gateway"`
	Location string `json:"location"`
	Endpoint string `json:"endpoint"`
	// Transport is how WireGuard reaches the gateway now: udp, tls or quic.
	Transport string `json:"transport"`
	// Via is the entry gateway of a multihop tunnel, whose relay port
	// Endpoint is; Gateway is then the exit.
	Via  string `json:"via,omitempty"`
	IPv4 string `json:"ipv4,omitempty"`
	IPv6 string `json:"ipv6,omitempty"`
	DNS  string `json:"dns,omitempty"`
	// State is StateConnected, or StateReconnecting while the watcher
	// looks for the gateway's new key or endpoint, or another gateway.
	State         string    `json:"state"`
	LastHandshake time.Time `json:"last_handshake,omitzero"`
	// HandshakeAge is whole seconds since the last handshake, -1 if none.
	HandshakeAge int64  `json:"handshake_age_seconds"`
	RxBytes      uint64 `json:"rx_bytes"`
	TxBytes      uint64 `json:"tx_bytes"`
	KillSwitch   bool   `json:"kill_switch"`
	// PortalUntil is when the open captive-portal window (`veil portal`)
	// ends; zero when none is open. PortalLeft is whole seconds to then.
	PortalUntil time.Time `json:"portal_until,omitzero"`
	PortalLeft  int64     `json:"portal_left_seconds,omitempty"`
	SOCKS       string    `json:"socks,omitempty"`
	HTTPProxy   string    `json:"http_proxy,omitempty"`
	Interface   string    `json:"interface,omitempty"`
	PID         int       `json:"pid"`

	// MTU is the tunnel MTU in use, probed or given.
	MTU int `json:"mtu,omitempty"`
	// QuantumResistant says that the handshakes mix in a pre-shared key
	// agreed with the gateway by ML-KEM-768.
	QuantumResistant bool `json:"quantum_resistant"`
}

// Values of Status.State.
const (
	StateConnected    = "connected"
	StateReconnecting = "reconnecting"
)

// Tunnel is a tunnel that is up. Close takes it down.
type Tunnel struct {
	cfg   TunnelConfig
	log   *slog.Logger
	dev   *wg.Device
	addrs []netip.Prefix
	mtu   atomic.Int64 // set by findMTU before Up returns, and by reprobeMTU

	// mu guards the gateway the tunnel points at, which Watch may change.
	mu           sync.Mutex
	server       apitypes.Server
	peer         wg.Key
	endpoint     netip.AddrPort
	gw           transport.Gateway // the gateway's TLS and QUIC
	dns          []netip.Addr
	reconnecting bool
	pq           pqState
	// portalOpened and portalUntil bound the open portal window (zero:
	// none); portalTimer, under opMu, seals it at portalUntil.
	portalOpened, portalUntil time.Time
	portalTimer               *time.Timer

	// bind carries WireGuard over the transport in use.
	bind *transport.ClientBind
	// hop is the entry gateway of a multihop tunnel; nil without one.
	hop *hop

	proxy *proxyPlane // proxy mode
	tun   *tunPlane   // tun mode
	// lookupControl resolves the control plane's URL for tun mode; nil
	// means resolveControl (the system resolver).
	lookupControl func(ctx context.Context, control string) ([]netip.AddrPort, error)

	// opMu keeps a peer change and Close apart; closed ends Watch.
	opMu      sync.Mutex
	closed    chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// tunnelSpec is TunnelConfig checked and parsed.
type tunnelSpec struct {
	priv     wg.Key
	peer     wg.Key
	endpoint netip.AddrPort
	addrs    []netip.Prefix // the device's own, /32 and /128
	dns      []netip.Addr   // the gateway's resolver inside the tunnel
}

func parseSpec(ctx context.Context, cfg TunnelConfig) (tunnelSpec, error) {
	var sp tunnelSpec
	if cfg.State == nil {
		return sp, ErrNotLoggedIn
	}
	var err error
	if sp.priv, err = wg.ParseKey(cfg.State.PrivateKey); err != nil {
		return sp, errors.New("the saved device key is damaged: run `veil login` again")
	}
	if sp.peer, err = wg.ParseKey(cfg.Server.PublicKey); err != nil {
		return sp, fmt.Errorf("gateway %s has no valid key", cfg.Server.Name)
	}
	if cfg.State.DeviceID == 0 || cfg.State.IPv4 == "" {
		return sp, errors.New("this device is not registered: run `veil login` again")
	}
	for _, s := range []string{cfg.State.IPv4, cfg.State.IPv6} {
		if s == "" {
			continue
		}
		p, err := parseHostPrefix(s)
		if err != nil {
			return sp, errors.New("the saved tunnel address is damaged: run `veil login` again")
		}
		sp.addrs = append(sp.addrs, p)
	}
	for _, s := range []string{cfg.Server.TunnelIPv4, cfg.Server.TunnelIPv6} {
		if a, err := parseAddr(s); err == nil {
			if a.Is6() && !hasFamily(sp.addrs, false) {
				continue // no IPv6 in the tunnel: no IPv6 resolver either
			}
			sp.dns = append(sp.dns, a)
		}
	}
	if sp.endpoint, err = serverEndpoint(ctx, cfg.Server, true); err != nil {
		return sp, err
	}
	return sp, nil
}

func hasFamily(addrs []netip.Prefix, v4 bool) bool {
	for _, p := range addrs {
		if p.Addr().Is4() == v4 {
			return true
		}
	}
	return false
}

// Up brings the tunnel up and returns once the first handshake with the
// gateway has completed, or with the reason it could not.
func Up(ctx context.Context, cfg TunnelConfig) (*Tunnel, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = 20 * time.Second
	}
	if cfg.TUNName == "" {
		cfg.TUNName = DefaultTUNName
	}
	sp, err := parseSpec(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Location == "" {
		cfg.Location = cfg.Server.Location
	}
	if cfg.StaleAfter == 0 {
		cfg.StaleAfter = DefaultStaleAfter
	}
	hop, err := newHop(ctx, &cfg, &sp)
	if err != nil {
		return nil, err
	}
	if _, err := transportOrder(cfg.Transport, transportInfo(cfg.Server)); err != nil {
		return nil, err
	}
	if err := ValidMTU(cfg.MTU); err != nil {
		return nil, err
	}
	t := &Tunnel{cfg: cfg, log: cfg.Logger, server: cfg.Server, peer: sp.peer, endpoint: sp.endpoint,
		gw: transportInfo(cfg.Server), addrs: sp.addrs, dns: sp.dns, closed: make(chan struct{}),
		bind: transport.NewClientBind(cfg.Bind), hop: hop}
	if hop != nil {
		t.gw = transport.Gateway{} // the relay carries plain UDP only
	}
	t.loadPQ(sp.priv.Public(), sp.peer)
	switch cfg.Mode {
	case ModeProxy:
		err = t.upProxy(ctx, sp)
	case ModeTUN:
		err = t.upTUN(ctx, sp)
	default:
		return nil, fmt.Errorf("unknown mode %q (tun or proxy)", cfg.Mode)
	}
	if err == nil {
		err = t.connectPQ(ctx)
	}
	if err == nil {
		err = t.findMTU(ctx)
	}
	if err != nil {
		return nil, t.failed(err)
	}
	t.logPQ(t.renewPQ(ctx))
	t.log.Info("tunnel up", "mode", cfg.Mode, "transport", t.bind.Transport())
	return t, nil
}

// failed takes down a tunnel that did not come up and says why. A kill
// switch already in place stays, as after a crash: the user asked that
// nothing leave outside the tunnel, and only `veil disconnect` lifts it.
func (t *Tunnel) failed(err error) error {
	if t.tun != nil && t.tun.lockedDown() {
		t.Shutdown()
		return fmt.Errorf("%w; %w", err, ErrLockedDown)
	}
	t.Close()
	return err
}

// ErrLockedDown is wrapped by the error of a connection that failed with
// a kill switch in place, which stays.
var ErrLockedDown = errors.New("the kill switch stays on and blocks all traffic: `veil connect` again, or `veil disconnect` to lift it")

// addPeer configures the gateway as the device's only peer, for all
// addresses, and starts the handshake (a keepalive goes out at once).
func (t *Tunnel) addPeer() error {
	if t.hop != nil {
		if err := t.openHop(); err != nil {
			return err
		}
	}
	return t.dev.SetPeer(t.peerConfig(t.peer, t.endpoint))
}

// peerConfig is the gateway peer: all addresses, keepalive on.
func (t *Tunnel) peerConfig(key wg.Key, ep netip.AddrPort) wg.Peer {
	allowed := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}
	if hasFamily(t.addrs, false) {
		allowed = append(allowed, netip.MustParsePrefix("::/0"))
	}
	return wg.Peer{
		PublicKey:           key,
		AllowedIPs:          allowed,
		Endpoint:            ep,
		PersistentKeepalive: keepalive,
		PresharedKey:        t.pskFor(key),
	}
}

// ErrNoHandshake is returned when the gateway does not answer.
var ErrNoHandshake = errors.New("no handshake with the gateway")

func (t *Tunnel) waitHandshake(ctx context.Context, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if st := t.Status(); st.HandshakeAge >= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%w %s within %s (is it online, and this device still registered?)",
					ErrNoHandshake, t.cfg.Server.Name, wait)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Status returns the tunnel's live state.
func (t *Tunnel) Status() Status {
	t.mu.Lock()
	peer, dns := t.peer, t.dns
	st := Status{
		Mode:         t.cfg.Mode,
		State:        StateConnected,
		Gateway:      t.server.Name,
		Location:     t.server.Location,
		Endpoint:     t.endpoint.String(),
		Transport:    t.bind.Transport(),
		Via:          t.viaName(),
		HandshakeAge: -1,
		MTU:          int(t.mtu.Load()),
		KillSwitch:   t.tun != nil && t.tun.killSwitch,
	}
	st.QuantumResistant = t.quantumResistant(peer)
	if t.reconnecting {
		st.State = StateReconnecting
	}
	if left := time.Until(t.portalUntil); left > 0 {
		st.PortalUntil, st.PortalLeft = t.portalUntil, int64((left+time.Second-1)/time.Second)
	}
	t.mu.Unlock()
	for _, p := range t.addrs {
		if p.Addr().Is4() {
			st.IPv4 = p.String()
		} else {
			st.IPv6 = p.String()
		}
	}
	if len(dns) > 0 {
		st.DNS = dns[0].String()
	}
	if t.proxy != nil {
		st.SOCKS, st.HTTPProxy = t.proxy.socksAddr(), t.proxy.httpAddr()
	}
	if t.tun != nil {
		st.Interface = t.cfg.TUNName
	}
	if t.dev == nil {
		return st
	}
	peers, err := t.dev.Peers()
	if err != nil {
		return st
	}
	for _, p := range peers {
		if p.PublicKey != peer {
			continue
		}
		st.RxBytes, st.TxBytes = p.RxBytes, p.TxBytes
		if !p.LastHandshake.IsZero() {
			st.LastHandshake = p.LastHandshake
			st.HandshakeAge = int64(time.Since(p.LastHandshake) / time.Second)
		}
	}
	return st
}

// Close takes the tunnel down. In tun mode it also removes the routes,
// restores DNS and removes the kill switch: it is what `veil disconnect`
// does. Shutdown keeps them.
func (t *Tunnel) Close() error {
	return t.close(false)
}

// Shutdown stops the tunnel but, in tun mode, leaves the kill switch and
// the DNS setting in place, as after a crash: nothing leaks until
// `veil disconnect`.
func (t *Tunnel) Shutdown() error {
	return t.close(true)
}

func (t *Tunnel) close(keepLockdown bool) error {
	t.closeOnce.Do(func() {
		close(t.closed)
		t.opMu.Lock() // a peer change in progress finishes first
		defer t.opMu.Unlock()
		if t.proxy != nil {
			t.proxy.close()
		}
		if t.dev != nil {
			t.dev.Close()
		}
		if t.tun != nil {
			t.closeErr = t.tun.close(keepLockdown)
		}
	})
	return t.closeErr
}
