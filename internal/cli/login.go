package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"veil/internal/client"
)

// stateDir resolves --state, defaulting to $XDG_CONFIG_HOME/veil. The
// path is made absolute: the background process of `veil connect` runs
// from the root directory.
func stateDir(flag string) (string, error) {
	if flag == "" {
		return client.DefaultDir()
	}
	dir, err := filepath.Abs(flag)
	if err != nil {
		return "", fmt.Errorf("state directory: %w", err)
	}
	return dir, nil
}

// loadState reads the saved login from the state directory flag names.
func loadState(flag string) (dir string, st *client.State, err error) {
	if dir, err = stateDir(flag); err != nil {
		return "", nil, err
	}
	st, err = client.LoadState(dir)
	return dir, st, err
}

// reportVersion sends the OS and app version, counted only in aggregate
// (promise P6); it waits a few seconds at most and never fails a command.
func reportVersion(ctx context.Context, api *client.API) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	api.Report(ctx, Version)
}

func printJSON(cmd *cobra.Command, v any) error {
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newLoginCmd() *cobra.Command {
	var control, state string
	cmd := &cobra.Command{
		Use:   "login ACCESS_CODE",
		Short: "Log in with an access code and register this device",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := stateDir(state)
			if err != nil {
				return err
			}
			st, err := client.Login(cmd.Context(), dir, control, args[0])
			if err != nil {
				return err
			}
			reportVersion(cmd.Context(), &client.API{Base: st.Control, Token: st.Token})
			fmt.Fprintf(cmd.OutOrStdout(), "Logged in. This device's tunnel addresses: %s, %s\n", st.IPv4, st.IPv6)
			return nil
		},
	}
	cmd.Flags().StringVar(&control, "control", "http://127.0.0.1:8080", "control plane URL")
	cmd.Flags().StringVar(&state, "state", "", "client state directory (default $XDG_CONFIG_HOME/veil)")
	return cmd
}
