package cli

import (
	"fmt"
	"net/netip"
	"os"

	"github.com/spf13/cobra"

	"veil/internal/config"
	"veil/internal/gateway"
	"veil/internal/resolver"
)

func newGatewayCmd() *cobra.Command {
	var (
		control, token, mode, rootHints, logLevel, tunName string
		port                                               int
		egress, blocklists                                 []string
	)
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Run a WireGuard gateway for a control plane",
		Long: `Run a Veil gateway: WireGuard peers follow the control plane's peer map,
tunnel traffic goes out to the internet through the egress guard, and a
no-log resolver answers DNS on the gateway's tunnel addresses.

--mode netstack (default) needs no root: flows leave through ordinary
sockets. --mode tun (root) uses a kernel TUN with forwarding and
masquerade in an nftables table of its own, removed at exit.

The token may also come from VEIL_GATEWAY_TOKEN, which keeps it out of
the process list.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if token == "" {
				token = os.Getenv("VEIL_GATEWAY_TOKEN")
			}
			if control == "" || token == "" {
				return fmt.Errorf("--control and --token are required")
			}
			allow, err := parsePrefixes(egress)
			if err != nil {
				return err
			}
			lists, err := config.ParseBlocklists(blocklists)
			if err != nil {
				return fmt.Errorf("--dns-blocklist: %w", err)
			}
			log := newLogger(cmd.ErrOrStderr(), logLevel)

			g, err := gateway.NewWithResolver(gateway.Config{
				ControlURL:  control,
				Token:       token,
				Mode:        mode,
				ListenPort:  port,
				EgressAllow: allow,
				Logger:      log,
				TUNName:     tunName,
			}, resolver.Config{
				RootHints:  rootHints,
				Blocklists: lists,
				Logger:     log,
			})
			if err != nil {
				return err
			}
			return g.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&control, "control", "", "control plane URL, e.g. https://veil.example")
	f.StringVar(&token, "token", "", "gateway token (from: veil admin gateway add)")
	f.StringVar(&mode, "mode", gateway.ModeNetstack, "data plane: netstack (no root) or tun (root)")
	f.IntVar(&port, "wg-port", 51820, "WireGuard UDP port")
	f.StringSliceVar(&egress, "egress-allow", nil, "CIDRs tunnel traffic may reach although the egress guard refuses them")
	f.StringVar(&rootHints, "dns-root-hints", "", "root hints file (named.root) for the resolver; empty: built in")
	f.StringSliceVar(&blocklists, "dns-blocklist", nil, "category=FILE blocklists for the resolver (ads, trackers, malware, adult, gambling)")
	f.StringVar(&tunName, "tun-name", "veil0", "TUN interface name in tun mode")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

// parsePrefixes parses --egress-allow values.
func parsePrefixes(ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("--egress-allow: %q is not a CIDR", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
