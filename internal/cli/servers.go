package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"veil/internal/apitypes"
	"veil/internal/client"
	"veil/internal/config"
)

func newServersCmd() *cobra.Command {
	var f *clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "servers",
		Short: "List gateways: location, load, endpoint",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.load(cmd, config.Client{})
			if err != nil {
				return err
			}
			if cfg.Control == "" {
				_, st, err := loadState(cfg.State)
				if err != nil {
					return fmt.Errorf("%w (or pass --control URL)", err)
				}
				cfg.Control = st.Control
			}
			servers, err := (&client.API{Base: cfg.Control}).Servers(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd, servers)
			}
			printServers(cmd, servers)
			return nil
		},
	}
	f = addClientFlags(cmd)
	cmd.Flags().String("control", "", "control plane URL (default: the one logged in to)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printServers(cmd *cobra.Command, servers []apitypes.Server) {
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tLOCATION\tLOAD\tSTATUS\tENDPOINT")
	for _, s := range servers {
		status := "offline"
		if s.Online {
			status = "online"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d%%\t%s\t%s\n", s.Name, s.Location, s.Load, status, s.Endpoint)
	}
	tw.Flush()
}
