package service

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"veil/internal/account"
	"veil/internal/apitypes"
	"veil/internal/config"
	"veil/internal/gateway"
	"veil/internal/resolver"
	"veil/internal/wg"
)

// startBuiltinGateway runs a netstack gateway in this process. It talks
// to this process's API over the public listener like any other gateway,
// with a token made fresh at every start and kept only in memory.
func (s *Service) startBuiltinGateway(ctx context.Context) error {
	token, err := account.NewToken()
	if err != nil {
		return err
	}
	lists, err := config.ParseBlocklists(s.Config.DNSBlocklists)
	if err != nil {
		return err
	}
	// The key outlives restarts, so connected clients keep their tunnels.
	key, err := wg.LoadOrCreateKey(filepath.Join(s.Config.DataDir, GatewayKeyFile))
	if err != nil {
		return err
	}
	dnsCert, err := gateway.DNSCertFiles(s.Config.DNSTLSCert, s.Config.DNSTLSKey, s.log)
	if err != nil {
		return err
	}
	proxy, err := gateway.LoadProxyConfig(s.Config.ProxyPort, s.Config.ProxyTLSCert, s.Config.ProxyTLSKey)
	if err != nil {
		return err
	}
	g, err := gateway.NewWithResolver(gateway.Config{
		Proxy:          proxy,
		ControlURL:     s.URL(),
		Token:          token,
		Mode:           gateway.ModeNetstack,
		PrivateKey:     key,
		ListenPort:     s.Config.WGPort,
		TLSPort:        s.Config.TLSPort,
		QUICPort:       s.Config.QUICPort,
		EgressAllow:    s.Config.EgressPrefixes(),
		DisablePQ:      s.Config.NoPQ,
		Logger:         s.log, // the gateway adds its own component attribute
		DNSCertificate: dnsCert,
	}, resolver.Config{
		RootHints:     s.Config.DNSRootHints,
		Port:          s.Config.DNSUpstreamPort,
		Forward:       s.Config.DNSForward,
		TrustAnchor:   s.Config.DNSTrustAnchor,
		DisableDNSSEC: !s.Config.DNSValidate,
		Blocklists:    lists,
		Logger:        s.log, // the resolver adds its own component attribute
	})
	if err != nil {
		return fmt.Errorf("starting the built-in gateway: %w", err)
	}
	endpoint := s.Config.Endpoint
	if endpoint == "" {
		host, _, _ := net.SplitHostPort(s.Config.HTTP)
		if a, err := netip.ParseAddr(host); err == nil && a.IsUnspecified() {
			host = "127.0.0.1"
		}
		endpoint = net.JoinHostPort(host, strconv.Itoa(g.Port()))
	}
	req := apitypes.GatewayCreateRequest{Name: s.Config.GatewayName, Location: s.Config.Location, Endpoint: endpoint}
	if err := s.API.EnsureBuiltinGateway(ctx, req, token); err != nil {
		return fmt.Errorf("registering the built-in gateway: %w", err)
	}
	s.Gateway = g
	s.builtin.Store(g)
	s.goRun(func() error { return g.Run(ctx) })
	return nil
}

// builtinMetrics exports the built-in gateway's own counts once it runs.
// It is an unchecked collector (Describe sends nothing) because the
// gateway may start after the admin listener.
type builtinMetrics struct{ s *Service }

// Describe implements prometheus.Collector.
func (builtinMetrics) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (b builtinMetrics) Collect(ch chan<- prometheus.Metric) {
	if g := b.s.builtin.Load(); g != nil {
		g.Collector().Collect(ch)
	}
}
