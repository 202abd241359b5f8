package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
)

// Client is what the client commands (login, servers, connect) can be
// told, read like Config: defaults, a TOML file, VEIL_* variables
// (VEIL_CONTROL, VEIL_STATE, …), flags.
type Client struct {
	// Control is the control plane's URL; empty: the one logged in to
	// (login falls back to DefaultControl).
	Control string `toml:"control" help:"control plane URL"`
	// State is the client state directory; empty: $XDG_CONFIG_HOME/veil.
	State string `toml:"state" help:"client state directory (default $XDG_CONFIG_HOME/veil)"`
	// SOCKS and HTTPProxy are proxy mode's listeners on loopback, or "off".
	SOCKS     string `toml:"socks" help:"proxy mode: SOCKS5 listener on loopback, or \"off\""`
	HTTPProxy string `toml:"http_proxy" help:"proxy mode: HTTP proxy listener on loopback, or \"off\""`
	// Transport is how WireGuard reaches the gateway: udp, tls, quic, or
	// auto (UDP, then QUIC, then TLS).
	Transport string `toml:"transport" help:"udp, tls, quic or auto (UDP, falling back to QUIC, then TLS)"`
	// KeyRotation is how often `veil connect` replaces the device's
	// WireGuard key without dropping the tunnel; 0: never.
	KeyRotation Duration `toml:"key_rotation" help:"how often the connected client replaces its device key (0: never)"`
	// NoPQ turns off the post-quantum pre-shared key agreed with the
	// gateway over ML-KEM-768 (on by default when the gateway offers it).
	NoPQ bool `toml:"no_pq" help:"do not agree a post-quantum (ML-KEM-768) pre-shared key with the gateway"`
}

// DefaultControl is the control plane `veil serve` runs by default.
const DefaultControl = "http://127.0.0.1:8080"

// LoadClient overrides def, the command's defaults, with the file, the
// environment and the flags, and checks the control URL.
func LoadClient(def Client, src Sources) (Client, error) {
	c := def
	if err := load(&c, src); err != nil {
		return c, err
	}
	if c.Control != "" {
		if err := checkControl(c.Control); err != nil {
			return c, err
		}
	}
	switch c.Transport {
	case "", "udp", "tls", "quic", "auto":
	default:
		return c, fmt.Errorf("config: transport: want udp, tls, quic or auto, got %q", c.Transport)
	}
	return c, nil
}

// Admin is what `veil admin` needs: the data directory holding the admin
// token and the control plane's URL.
type Admin struct {
	Data    string
	Control string
}

// LoadAdmin reads `veil admin`'s settings from the sources `veil serve`
// reads (its --config file, its VEIL_* variables, the --data flag), so
// that both agree on one machine with nothing repeated: the control URL
// is serve's http listener unless VEIL_CONTROL or --control says
// otherwise.
func LoadAdmin(src Sources) (Admin, error) {
	c, err := Load(src)
	if err != nil {
		return Admin{}, err
	}
	cl := Client{Control: listenURL(c.HTTP)}
	if err := load(&cl, Sources{Env: src.Env, Flags: src.Flags}); err != nil {
		return Admin{}, err
	}
	if err := checkControl(cl.Control); err != nil {
		return Admin{}, err
	}
	return Admin{Data: c.DataDir, Control: cl.Control}, nil
}

// listenURL is the URL that reaches a listener on addr from this
// machine: an unspecified host (0.0.0.0, ::) is reached on loopback.
func listenURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return DefaultControl
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if err == nil && ip.Is6() {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}

func checkControl(s string) error {
	if u, err := url.Parse(s); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("config: control: want the control plane's URL, like https://veil.example, got %q", s)
	}
	return nil
}
