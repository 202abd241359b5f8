package cli

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"veil/internal/certfile"
	"veil/internal/config"
	"veil/internal/gateway"
	"veil/internal/resolver"
	"veil/internal/service"
	"veil/internal/wg"
)

func newGatewayCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "gateway --control URL --token TOKEN [--mode tun|netstack]",
		Short: "Run a WireGuard gateway for a control plane",
		Long: `Run a Veil gateway: WireGuard peers follow the control plane's peer map,
tunnel traffic goes out to the internet through the egress guard, and a
no-log resolver answers DNS on the gateway's tunnel addresses.

--mode netstack (default) needs no root: flows leave through ordinary
sockets. --mode tun (root) uses a kernel TUN with forwarding and
masquerade in an nftables table of its own, removed at exit.

Configuration comes from defaults, then --config FILE (TOML), then VEIL_*
variables (VEIL_TOKEN keeps the token out of the process list), then flags.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.LoadGateway(config.Sources{File: file, Env: os.LookupEnv, Flags: cmd.Flags()})
			if err != nil {
				return err
			}
			lists, err := config.ParseBlocklists(cfg.DNSBlocklists)
			if err != nil {
				return err
			}
			var key wg.Key
			if cfg.KeyFile != "" {
				if key, err = wg.LoadOrCreateKey(cfg.KeyFile); err != nil {
					return err
				}
			}
			var cert *tls.Certificate
			if cfg.TLSCert != "" {
				f, err := certfile.Load(cfg.TLSCert, cfg.TLSKey)
				if err != nil {
					return fmt.Errorf("reading tls_cert and tls_key: %w", err)
				}
				cert = f.Certificate()
			}
			proxy, err := gateway.LoadProxyConfig(cfg.ProxyPort, cfg.ProxyTLSCert, cfg.ProxyTLSKey)
			if err != nil {
				return err
			}
			log := newLogger(cmd.ErrOrStderr(), cfg.LogLevel)
			dnsCert, err := gateway.DNSCertFiles(cfg.DNSTLSCert, cfg.DNSTLSKey, log)
			if err != nil {
				return err
			}
			g, err := gateway.NewWithResolver(gateway.Config{
				Proxy:          proxy,
				ControlURL:     cfg.Control,
				Token:          cfg.Token,
				Mode:           cfg.Mode,
				PrivateKey:     key,
				ListenPort:     cfg.WGPort,
				TLSPort:        cfg.TLSPort,
				QUICPort:       cfg.QUICPort,
				Certificate:    cert,
				EgressAllow:    cfg.EgressPrefixes(),
				DisablePQ:      cfg.NoPQ,
				Egress:         cfg.Egress(),
				Logger:         log,
				TUNName:        cfg.TUNName,
				IdleTimeout:    time.Duration(cfg.IdleTimeout),
				DNSCertificate: dnsCert,
			}, resolver.Config{
				RootHints:     cfg.DNSRootHints,
				Port:          cfg.DNSUpstreamPort,
				Forward:       cfg.DNSForward,
				TrustAnchor:   cfg.DNSTrustAnchor,
				DisableDNSSEC: !cfg.DNSValidate,
				Blocklists:    lists,
				Logger:        log,
			})
			if err != nil {
				return err
			}
			if cfg.AdminHTTP != "" {
				stop, err := serveMetrics(cfg.AdminHTTP, g.Collector())
				if err != nil {
					return err
				}
				defer stop()
			}
			return g.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&file, "config", "", "TOML configuration file")
	config.AddFlags(cmd.Flags(), config.DefaultGateway())
	return cmd
}

// serveMetrics serves /metrics on the operator listener addr, as serve's
// does; stop closes it.
func serveMetrics(addr string, c prometheus.Collector) (stop func(), err error) {
	mux := service.MetricsMux(c)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s (admin_http): %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return func() { srv.Close() }, nil
}
