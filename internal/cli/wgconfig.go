package cli

import (
	"fmt"

	"github.com/skip2/go-qrcode"
	"github.com/spf13/cobra"

	"veil/internal/client"
)

func newWGConfigCmd() *cobra.Command {
	var f *clientFlags
	var location, name string
	var qr bool
	cmd := &cobra.Command{
		Use:   "wg-config [--location CC|CC-city|NAME] [--device NAME] [--qr]",
		Short: "Print a wg-quick file for routers, phones and the official WireGuard apps",
		Long: `wg-config registers a new device on the account, with a key made here for
it alone, and prints its wg-quick file: each file is a device of its own,
removable with ` + "`veil devices remove`" + ` without touching the others. The
file holds the new device's private key, which is kept nowhere else.
--qr prints it as a QR code for the WireGuard app on a phone.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, st, err := f.api(cmd)
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
			if name == "" {
				name = "wg-" + srv.Location
			}
			conf, d, err := client.ExportDevice(cmd.Context(), api, name, srv)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "registered device %d (%s); `veil devices remove %d` removes it\n", d.ID, d.Name, d.ID)
			if qr {
				code, err := qrcode.New(conf, qrcode.Low)
				if err != nil {
					return fmt.Errorf("drawing the QR code: %w", err)
				}
				fmt.Fprint(cmd.OutOrStdout(), code.ToSmallString(false))
				return nil
			}
			fmt.Fprint(cmd.OutOrStdout(), conf)
			return nil
		},
	}
	f = addClientFlags(cmd)
	cmd.Flags().StringVar(&location, "location", "", "country, location or gateway name")
	cmd.Flags().StringVar(&name, "device", "", `name of the new device (default "wg-" and the location)`)
	cmd.Flags().BoolVar(&qr, "qr", false, "print the file as a QR code for the WireGuard app")
	return cmd
}
