package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"veil/internal/client"
)

func newWGConfigCmd() *cobra.Command {
	var f *clientFlags
	var location string
	cmd := &cobra.Command{
		Use:   "wg-config [--location CC|CC-city|NAME]",
		Short: "Print a wg-quick file for routers, phones and the official WireGuard apps",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, st, err := f.loadState(cmd)
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
	f = addClientFlags(cmd)
	cmd.Flags().StringVar(&location, "location", "", "country, location or gateway name")
	return cmd
}
