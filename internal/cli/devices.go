package cli

import (
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"veil/internal/apitypes"
	"veil/internal/client"
)

func newDevicesCmd() *cobra.Command {
	var f *clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "devices",
		Short: "List the account's devices; rename one, or remove one to free a place",
		Long: `devices lists the devices of the logged-in account: name, tunnel
addresses, when each was registered and how old its key is. Veil keeps no
last-seen time.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, _, err := f.api(cmd)
			if err != nil {
				return err
			}
			devs, err := api.Devices(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd, devs)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			now := time.Now()
			fmt.Fprintln(tw, "ID\tNAME\tIPV4\tIPV6\tCREATED\tKEY AGE")
			for _, d := range devs {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Name, d.IPv4, d.IPv6, d.CreatedAt.Format(time.DateOnly), keyAge(now, d.KeyCreatedAt))
			}
			return tw.Flush()
		},
	}
	f = addClientFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(newDevicesRemoveCmd(), newDevicesRenameCmd())
	return cmd
}

// keyAge says how old a key is, in days once it is a day old.
func keyAge(now, created time.Time) string {
	age := now.Sub(created)
	switch {
	case created.IsZero():
		return "-"
	case age < time.Hour:
		return "<1h"
	case age < 24*time.Hour:
		return fmt.Sprintf("%dh", int(age.Hours()))
	default:
		return fmt.Sprintf("%dd", int(age.Hours()/24))
	}
}

func newDevicesRenameCmd() *cobra.Command {
	var f *clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "rename ID|NAME NEW_NAME",
		Short: "Give a device a new name",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, _, d, err := f.device(cmd, args[0])
			if err != nil {
				return err
			}
			nd, err := api.RenameDevice(cmd.Context(), d.ID, args[1])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd, nd)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "renamed device %d from %q to %q\n", nd.ID, d.Name, nd.Name)
			return nil
		},
	}
	f = addClientFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the renamed device as JSON")
	return cmd
}

func newDevicesRemoveCmd() *cobra.Command {
	var f *clientFlags
	var force bool
	cmd := &cobra.Command{
		Use:   "remove ID|NAME",
		Short: "Remove a device from the account",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, st, d, err := f.device(cmd, args[0])
			if err != nil {
				return err
			}
			if d.ID == st.DeviceID && !force {
				return fmt.Errorf("device %q is this CLI's own; use `veil logout`, or --force", d.Name)
			}
			if err := api.DeleteDevice(cmd.Context(), d.ID); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed device %d (%s)\n", d.ID, d.Name)
			return nil
		},
	}
	f = addClientFlags(cmd)
	cmd.Flags().BoolVar(&force, "force", false, "remove even this CLI's own device")
	return cmd
}

// device looks up the account's device ref names (see findDevice), with
// the API client and state it was found through.
func (f *clientFlags) device(cmd *cobra.Command, ref string) (*client.API, *client.State, *apitypes.Device, error) {
	api, st, err := f.api(cmd)
	if err != nil {
		return nil, nil, nil, err
	}
	devs, err := api.Devices(cmd.Context())
	if err != nil {
		return nil, nil, nil, err
	}
	d, err := findDevice(devs, ref)
	return api, st, d, err
}

// findDevice picks a device by id or, failing that, by its exact name;
// a name two devices share is refused rather than guessed.
func findDevice(devs []apitypes.Device, ref string) (*apitypes.Device, error) {
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		for i := range devs {
			if devs[i].ID == id {
				return &devs[i], nil
			}
		}
	}
	var found *apitypes.Device
	for i := range devs {
		if devs[i].Name == ref {
			if found != nil {
				return nil, fmt.Errorf("two devices are named %q; give the id (see `veil devices`)", ref)
			}
			found = &devs[i]
		}
	}
	if found == nil {
		return nil, fmt.Errorf("no device %q on this account (see `veil devices`)", ref)
	}
	return found, nil
}

func (f *clientFlags) api(cmd *cobra.Command) (*client.API, *client.State, error) {
	dir, st, err := f.loadState(cmd)
	if err != nil {
		return nil, nil, err
	}
	api, err := st.API(cmd.Context(), dir)
	return api, st, err
}
