package cli

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/spf13/cobra"

	"veil/internal/client"
)

func newLogoutCmd() *cobra.Command {
	var f *clientFlags
	cmd := &cobra.Command{
		Use:   "logout",
		Short: "Remove this device from the account and forget the login and key",
		Long: `logout removes this machine's device from the account, freeing its place,
and deletes the saved login and WireGuard key. It refuses while a tunnel is
up: run ` + "`veil disconnect`" + ` first, so that DNS and the kill switch are restored.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, st, err := f.loadState(cmd)
			if err != nil {
				return err
			}
			if _, err := client.QueryStatus(cmd.Context(), dir); !errors.Is(err, client.ErrNotConnected) {
				return errors.New("a tunnel is up: run `veil disconnect` first")
			}
			api, err := st.API(cmd.Context(), dir)
			if err != nil {
				return err
			}
			if st.DeviceID != 0 {
				// A device already removed elsewhere leaves nothing to undo.
				var apiErr *client.APIError
				if err := api.DeleteDevice(cmd.Context(), st.DeviceID); err != nil && !(errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound) {
					return err
				}
			}
			if err := client.Forget(dir); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Logged out; this device is removed from the account")
			return nil
		},
	}
	f = addClientFlags(cmd)
	return cmd
}

func newCompletionCmd() *cobra.Command {
	return &cobra.Command{
		Use:       "completion bash|zsh|fish",
		Short:     "Print a shell completion script",
		Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		ValidArgs: []string{"bash", "zsh", "fish"},
		RunE: func(cmd *cobra.Command, args []string) error {
			out, root := cmd.OutOrStdout(), cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			default:
				return root.GenFishCompletion(out, true)
			}
		},
	}
}
