package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"veil/internal/client"
)

func newWGConfigCmd() *cobra.Command {
	var state, location string
	cmd := &cobra.Command{
		Use:   "wg-config [--location CC|CC-city|NAME]",
		Short: "Print a wg-quick file for routers, phones and the official WireGuard apps",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, st, err := loadState(state)
			if err != nil {
				return err
			}
			servers, err := (&client.API{Base: st.Control}).Servers(cmd.Context())
			if err != nil {
				return err
			}
			srv, err := client.PickServer(servers, location)
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), client.WGConfig(st, srv))
			return nil
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "client state directory (default $XDG_CONFIG_HOME/veil)")
	cmd.Flags().StringVar(&location, "location", "", "country, location or gateway name")
	return cmd
}
