package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"time"

	"veil/internal/apitypes"
)

// Gateway is everything `veil gateway` can be told, read like Config:
// defaults, a TOML file, VEIL_* variables, flags.
type Gateway struct {
	// Control is the control plane's base URL.
	Control string `toml:"control" help:"control plane URL, e.g. https://veil.example"`
	// Token is the gateway's token from `veil admin gateway add`; prefer
	// VEIL_TOKEN or the file to the flag, which others can read in ps.
	Token string `toml:"token" help:"gateway token (from: veil admin gateway add)"`
	// Mode is netstack (no root) or tun (root).
	Mode string `toml:"mode" help:"data plane: netstack (no root) or tun (root)"`
	// KeyFile holds the gateway's WireGuard private key (wg(8) form),
	// created on first start; empty: a new key at every start, and
	// clients must fetch it again after a restart.
	KeyFile string `toml:"key_file" help:"file with the gateway's WireGuard private key, created if missing; empty: a new key per start"`
	// TUNName is the kernel interface in tun mode.
	TUNName string `toml:"tun_name" help:"TUN interface name in tun mode"`

	WGPort int `toml:"wg_port" help:"WireGuard UDP port"`
	// TLSPort and QUICPort are where WireGuard over TLS (TCP) and over
	// QUIC (UDP) are served, for networks that block WireGuard; 0 turns
	// one off. Any other listener on the host (an HTTPS proxy) needs a
	// port of its own.
	TLSPort  int `toml:"tls_port" help:"TCP port for WireGuard over TLS (and a plain HTTPS page); 0: off"`
	QUICPort int `toml:"quic_port" help:"UDP port for WireGuard over QUIC; 0: off"`
	// TLSCert and TLSKey are PEM files of the certificate both present;
	// empty: a self-signed one made at start and kept in RAM. Clients
	// trust either by its key's pin, published in the server list.
	TLSCert string `toml:"tls_cert" help:"PEM certificate for TLS and QUIC; empty: self-signed at start"`
	TLSKey  string `toml:"tls_key" help:"PEM private key of tls_cert"`
	// ProxyPort is the TCP port of the HTTPS proxy for the browser
	// extension; 0: no proxy.
	ProxyPort int `toml:"proxy_port" help:"TCP port of the HTTPS proxy for the browser extension; 0: none"`
	// ProxyTLSCert and ProxyTLSKey are the proxy's certificate and key
	// (PEM); empty: a self-signed certificate made at start, whose pin the
	// gateway logs.
	ProxyTLSCert string   `toml:"proxy_tls_cert" help:"PEM certificate (chain) of the HTTPS proxy; empty: self-signed, pin logged at start"`
	ProxyTLSKey  string   `toml:"proxy_tls_key" help:"PEM private key of the HTTPS proxy's certificate"`
	EgressAllow  []string `toml:"egress_allow" help:"CIDRs tunnel traffic may reach although the egress guard refuses them"`
	// AllowBroadRanges lets egress_allow hold ranges broader than /8
	// (IPv4) or /32 (IPv6).
	AllowBroadRanges bool `toml:"allow_broad_ranges" help:"accept egress_allow ranges broader than /8 (IPv4) or /32 (IPv6)"`
	// NoPQ turns off the post-quantum pre-shared key exchange on the
	// tunnel addresses; clients then keep tunnels without one.
	NoPQ bool `toml:"no_pq" help:"offer no post-quantum (ML-KEM-768) pre-shared key exchange to clients"`
	// EgressAddrs are the public addresses the gateway's traffic leaves
	// from, when not the host's own (behind NAT, or another address).
	EgressAddrs     []string `toml:"egress_addrs" help:"public addresses its traffic leaves from; empty: the host's source addresses for the internet"`
	DNSRootHints    string   `toml:"dns_root_hints" help:"root hints file (named.root) for the resolver; empty: built in"`
	DNSForward      []string `toml:"dns_forward" help:"forward DNS to these DoT (tls://host:853#name) or DoH (https://…) upstreams instead of recursing"`
	DNSBlocklists   []string `toml:"dns_blocklists" help:"category=FILE blocklists (ads, trackers, malware, adult, gambling)"`
	DNSUpstreamPort int      `toml:"dns_upstream_port" help:"port of authoritative DNS servers (tests); 0: 53"`
	DNSTrustAnchor  string   `toml:"dns_trust_anchor" help:"DNSSEC trust anchor file (DS or DNSKEY records); empty: the built-in IANA root KSKs"`
	DNSValidate     bool     `toml:"dns_validate" help:"validate DNSSEC (turn off only for an unsigned test root)"`
	// DNSTLSCert and DNSTLSKey are the PEM certificate and key of DNS
	// over TLS (port 853) and HTTPS (port 443, /dns-query) on the tunnel
	// addresses; empty: plain DNS only.
	DNSTLSCert string `toml:"dns_tls_cert" help:"PEM certificate for DNS over TLS/HTTPS on the tunnel addresses; empty: off"`
	DNSTLSKey  string `toml:"dns_tls_key" help:"PEM key of dns_tls_cert"`
	LogLevel   string `toml:"log_level" help:"debug, info, warn or error"`
	// IdleTimeout is how long a device stays on the WireGuard device with
	// no handshake; devices are put there by their first one.
	IdleTimeout Duration `toml:"idle_timeout" help:"how long an idle device stays on the WireGuard device (at least 3m)"`
	// AdminHTTP is the operator listener for /metrics; empty disables it.
	AdminHTTP string `toml:"admin_http" help:"operator listener (metrics), HOST:PORT; empty: off"`
}

// DefaultGateway returns the gateway configuration used when nothing is
// set.
func DefaultGateway() Gateway {
	return Gateway{Mode: "netstack", TUNName: "veil0", WGPort: 51820, TLSPort: 443, QUICPort: 443, LogLevel: "info", IdleTimeout: Duration(5 * time.Minute), DNSValidate: true}
}

// LoadGateway reads the configuration of `veil gateway` from its sources
// and validates it.
func LoadGateway(src Sources) (Gateway, error) {
	g := DefaultGateway()
	if err := load(&g, src); err != nil {
		return g, err
	}
	return g, g.Validate()
}

// Validate checks every key and returns the first problem, naming the key.
func (g *Gateway) Validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...))
	}
	if !httpURL(g.Control) {
		return bad("control", "want the control plane's URL, like https://veil.example")
	}
	if g.Token == "" {
		return bad("token", "required: the token `veil admin gateway add` printed")
	}
	if g.Mode != "netstack" && g.Mode != "tun" {
		return bad("mode", "want netstack or tun, got %q", g.Mode)
	}
	if g.Mode == "tun" && (g.TUNName == "" || len(g.TUNName) > 15) {
		return bad("tun_name", "want an interface name of 1 to 15 characters, got %q", g.TUNName)
	}
	if len(g.EgressAddrs) > apitypes.MaxEgress {
		return bad("egress_addrs", "at most %d addresses", apitypes.MaxEgress)
	}
	for _, a := range g.EgressAddrs {
		if _, err := netip.ParseAddr(a); err != nil {
			return bad("egress_addrs", "%q is not an IP address", a)
		}
	}
	// A WireGuard session lasts up to 3 minutes: a device taken off
	// sooner would lose a live session and wait for its client to retry.
	if time.Duration(g.IdleTimeout) < 3*time.Minute {
		return bad("idle_timeout", "at least 3m, got %s", g.IdleTimeout)
	}
	if g.AdminHTTP != "" {
		if _, _, err := net.SplitHostPort(g.AdminHTTP); err != nil {
			return bad("admin_http", "want HOST:PORT, got %q", g.AdminHTTP)
		}
	}
	if err := checkTransportPorts(g.WGPort, g.TLSPort, g.QUICPort); err != nil {
		return err
	}
	if (g.TLSCert == "") != (g.TLSKey == "") {
		return bad("tls_cert", "tls_cert and tls_key go together")
	}
	for key, f := range map[string]string{"tls_cert": g.TLSCert, "tls_key": g.TLSKey} {
		if f != "" {
			if err := CheckFile(f, MaxTextFile); err != nil {
				return bad(key, "%v", err)
			}
		}
	}
	if g.KeyFile != "" {
		// Created when missing; read at start when present.
		if _, err := os.Stat(g.KeyFile); !errors.Is(err, fs.ErrNotExist) {
			if err := CheckFile(g.KeyFile, MaxTextFile); err != nil {
				return bad("key_file", "%v", err)
			}
		}
	}
	if err := checkCertPair("dns_tls_cert", g.DNSTLSCert, "dns_tls_key", g.DNSTLSKey); err != nil {
		return err
	}
	if err := checkProxy(g.ProxyPort, g.ProxyTLSCert, g.ProxyTLSKey); err != nil {
		return err
	}
	return (dataPlane{g.WGPort, g.DNSUpstreamPort, g.EgressAllow, g.AllowBroadRanges, g.DNSRootHints, g.DNSBlocklists, g.DNSForward, g.LogLevel}).check()
}

// Egress returns EgressAddrs parsed; Validate has checked them.
func (g *Gateway) Egress() []netip.Addr {
	var out []netip.Addr
	for _, a := range g.EgressAddrs {
		if ip, err := netip.ParseAddr(a); err == nil {
			out = append(out, ip.Unmap())
		}
	}
	return out
}

// EgressPrefixes returns EgressAllow parsed; Validate has checked it.
func (g *Gateway) EgressPrefixes() []netip.Prefix { return prefixes(g.EgressAllow) }

// checkTransportPorts checks tls_port and quic_port beside wg_port.
func checkTransportPorts(wgPort, tlsPort, quicPort int) error {
	for _, p := range []struct {
		key  string
		port int
	}{{"tls_port", tlsPort}, {"quic_port", quicPort}} {
		if p.port < 0 || p.port > 65535 {
			return fmt.Errorf("config: %s: %d is not a port", p.key, p.port)
		}
	}
	if quicPort != 0 && quicPort == wgPort {
		return errors.New("config: quic_port: must differ from wg_port (both are UDP)")
	}
	return nil
}
