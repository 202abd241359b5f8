package wg

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"
)

// DefaultMTU is the tunnel MTU Veil uses everywhere, as wg-quick does:
// 1500 minus the WireGuard, UDP and IPv6 overhead.
const DefaultMTU = 1420

// DeviceConfig configures NewDevice.
type DeviceConfig struct {
	// TUN carries the tunnel's IP packets: a kernel TUN (CreateTUN) or a
	// netstack (NewNetstack). The device owns it and closes it.
	TUN tun.Device
	// Bind carries WireGuard's UDP. If nil, wireguard-go's default bind on
	// the host's sockets is used.
	Bind conn.Bind
	// PrivateKey is the device's key; it must be set.
	PrivateKey Key
	// ListenPort is the UDP port. Zero lets the system pick one; Port
	// tells which.
	ListenPort int
	// FirewallMark, if not zero, marks the device's UDP sockets (SO_MARK)
	// from the moment they open, before the first packet leaves.
	FirewallMark uint32
	// Logger receives wireguard-go's messages without their arguments
	// (which hold keys and endpoints). If nil, nothing is logged.
	Logger *slog.Logger
	// Admit, if set, installs peers on demand: every handshake
	// initiation is checked before wireguard-go sees it, and one from an
	// initiator the device does not hold waits for Admit to decide. If
	// nil, the device knows only the peers it is given.
	Admit Admitter
}

// Device is a running WireGuard device.
type Device struct {
	dev *device.Device
}

// Peer is one peer's configuration.
type Peer struct {
	PublicKey  Key
	AllowedIPs []netip.Prefix
	// Endpoint is where to send handshakes; zero for a gateway's peers,
	// which roam and are learnt from their packets.
	Endpoint netip.AddrPort
	// PersistentKeepalive is zero (off) or at least a second.
	PersistentKeepalive time.Duration
	// PresharedKey, if not nil, is set as the peer's pre-shared key (the
	// Noise handshake's psk); the zero key removes it. If nil, an existing
	// peer keeps the one it has.
	PresharedKey *Key
}

// PeerStats is the live state of one peer, from RAM only.
type PeerStats struct {
	PublicKey     Key
	LastHandshake time.Time // zero before the first handshake
	RxBytes       uint64
	TxBytes       uint64
}

// Stats are a device's aggregate counters.
type Stats struct {
	Peers   int
	RxBytes uint64
	TxBytes uint64
}

// NewDevice starts a WireGuard device on cfg.TUN and brings it up.
func NewDevice(cfg DeviceConfig) (*Device, error) {
	if cfg.TUN == nil {
		return nil, errors.New("wireguard device: no TUN")
	}
	if cfg.PrivateKey.IsZero() {
		return nil, errors.New("wireguard device: no private key")
	}
	bind := cfg.Bind
	if bind == nil {
		bind = conn.NewDefaultBind()
	}
	var ab *admitBind
	if cfg.Admit != nil {
		ab = newAdmitBind(bind, cfg.PrivateKey, cfg.Admit)
		bind = ab
	}
	dev := device.NewDevice(cfg.TUN, bind, newLogger(cfg.Logger))
	if ab != nil {
		ab.held = func(k Key) bool { return dev.LookupPeer(device.NoisePublicKey(k)) != nil }
	}
	// Set before Up: wireguard-go marks the sockets as it opens them.
	conf := fmt.Sprintf("private_key=%s\nlisten_port=%d\nfwmark=%d\n", cfg.PrivateKey.hex(), cfg.ListenPort, cfg.FirewallMark)
	if err := dev.IpcSet(conf); err != nil {
		dev.Close()
		return nil, fmt.Errorf("configuring wireguard device: %w", err)
	}
	if err := dev.Up(); err != nil {
		dev.Close()
		return nil, fmt.Errorf("bringing wireguard device up: %w", err)
	}
	return &Device{dev: dev}, nil
}

// newLogger passes wireguard-go's format strings on without their
// arguments: those name peers and endpoints (P1, P3).
func newLogger(l *slog.Logger) *device.Logger {
	if l == nil {
		return &device.Logger{Verbosef: device.DiscardLogf, Errorf: device.DiscardLogf}
	}
	return &device.Logger{
		Verbosef: func(format string, _ ...any) { l.Debug("wireguard", "event", format) },
		Errorf:   func(format string, _ ...any) { l.Warn("wireguard", "event", format) },
	}
}

// Port returns the UDP port the device listens on.
func (d *Device) Port() (int, error) {
	s, err := d.dev.IpcGet()
	if err != nil {
		return 0, fmt.Errorf("reading wireguard state: %w", err)
	}
	for line := range strings.Lines(s) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "listen_port="); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("wireguard device has no listen port")
}

// SetPeer adds the peer, or changes its allowed IPs (replacing them) and
// endpoint if it exists, without disturbing its session.
func (d *Device) SetPeer(p Peer) error {
	return d.UpdatePeers([]Peer{p}, nil)
}

// RemovePeer removes one peer; removing an unknown peer is not an error.
func (d *Device) RemovePeer(pub Key) error {
	return d.UpdatePeers(nil, []Key{pub})
}

// MaxPeers is the most peers one device holds (wireguard-go's limit).
const MaxPeers = device.MaxPeers

// UpdatePeers applies many single-peer changes in one configuration call:
// each peer of set is added or changed as SetPeer does, each key of remove
// removed. Peers named in neither are untouched, so live sessions never
// drop, unlike a replace of the whole peer list.
func (d *Device) UpdatePeers(set []Peer, remove []Key) error {
	var b strings.Builder
	// Removals first: they free room, and a revoked key must go even if
	// a later line is refused.
	for _, k := range remove {
		b.WriteString("public_key=" + k.hex() + "\nremove=true\n")
	}
	for _, p := range set {
		b.WriteString("public_key=" + p.PublicKey.hex() + "\nreplace_allowed_ips=true\n")
		for _, pfx := range p.AllowedIPs {
			b.WriteString("allowed_ip=" + pfx.String() + "\n")
		}
		if p.Endpoint.IsValid() {
			b.WriteString("endpoint=" + p.Endpoint.String() + "\n")
		}
		if p.PersistentKeepalive > 0 {
			fmt.Fprintf(&b, "persistent_keepalive_interval=%d\n", int(p.PersistentKeepalive/time.Second))
		}
		if p.PresharedKey != nil {
			b.WriteString("preshared_key=" + p.PresharedKey.hex() + "\n")
		}
	}
	if b.Len() == 0 {
		return nil
	}
	if err := d.dev.IpcSet(b.String()); err != nil {
		// The error text may hold a key or address; keep only its kind.
		var ipcErr *device.IPCError
		if errors.As(err, &ipcErr) {
			return fmt.Errorf("updating wireguard peers: configuration error %d", ipcErr.ErrorCode())
		}
		return errors.New("updating wireguard peers: configuration error")
	}
	return nil
}

// Peers returns the live state of every peer.
func (d *Device) Peers() ([]PeerStats, error) {
	s, err := d.dev.IpcGet()
	if err != nil {
		return nil, fmt.Errorf("reading wireguard state: %w", err)
	}
	var out []PeerStats
	var hsSec, hsNsec int64
	flush := func() {
		if len(out) > 0 && (hsSec != 0 || hsNsec != 0) {
			out[len(out)-1].LastHandshake = time.Unix(hsSec, hsNsec)
		}
		hsSec, hsNsec = 0, 0
	}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch k {
		case "public_key":
			flush()
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != KeyLen {
				return nil, errors.New("reading wireguard state: bad public key")
			}
			out = append(out, PeerStats{PublicKey: Key(b)})
		case "last_handshake_time_sec":
			hsSec, _ = strconv.ParseInt(v, 10, 64)
		case "last_handshake_time_nsec":
			hsNsec, _ = strconv.ParseInt(v, 10, 64)
		case "rx_bytes":
			if len(out) > 0 {
				out[len(out)-1].RxBytes, _ = strconv.ParseUint(v, 10, 64)
			}
		case "tx_bytes":
			if len(out) > 0 {
				out[len(out)-1].TxBytes, _ = strconv.ParseUint(v, 10, 64)
			}
		}
	}
	flush()
	return out, nil
}

// Stats returns the device's aggregate counters, nothing per peer.
func (d *Device) Stats() (Stats, error) {
	peers, err := d.Peers()
	if err != nil {
		return Stats{}, err
	}
	st := Stats{Peers: len(peers)}
	for _, p := range peers {
		st.RxBytes += p.RxBytes
		st.TxBytes += p.TxBytes
	}
	return st, nil
}

// Close stops the device and closes its TUN and bind.
func (d *Device) Close() {
	d.dev.Close()
}

// CreateTUN creates a kernel TUN interface (root or CAP_NET_ADMIN).
func CreateTUN(name string, mtu int) (tun.Device, error) {
	t, err := tun.CreateTUN(name, mtu)
	if err != nil {
		return nil, fmt.Errorf("creating TUN %s: %w", name, err)
	}
	return t, nil
}

// SetPrivateKey replaces the device's own key in place. Sessions made
// with the old key end; the next packet to a peer starts a handshake
// with the new one. Peers, addresses and sockets stay.
func (d *Device) SetPrivateKey(k Key) error {
	if k.IsZero() {
		return errors.New("wireguard device: no private key")
	}
	if err := d.dev.IpcSet("private_key=" + k.hex() + "\n"); err != nil {
		return errors.New("setting the wireguard key: configuration error")
	}
	return nil
}

// Rehandshake ends the sessions with peer and sends a handshake
// initiation now, instead of after wireguard-go's own retry timer
// (Rekey-Timeout, 5 s): for when the peer may just have learnt our key.
func (d *Device) Rehandshake(peer Key) {
	if p := d.dev.LookupPeer(device.NoisePublicKey(peer)); p != nil {
		p.ExpireCurrentKeypairs()
		p.SendHandshakeInitiation(false)
	}
}
