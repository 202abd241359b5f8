package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"veil/internal/client"
	"veil/internal/config"
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
	api.Report(ctx, appVersion())
}

func printJSON(cmd *cobra.Command, v any) error {
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newLoginCmd() *cobra.Command {
	var f *clientFlags
	cmd := &cobra.Command{
		Use:   "login [ACCESS_CODE | -]",
		Short: "Log in with an access code and register this device",
		Long: `login exchanges an access code for a session and registers this device's
WireGuard key. Without an argument it asks for the code at the terminal
(not echoed) or reads it from standard input; "-" reads standard input.
A code given as an argument is visible to other users in the process list.

The control plane is --control, VEIL_CONTROL or control in --config FILE,
else ` + config.DefaultControl + `.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.load(cmd, config.Client{Control: config.DefaultControl})
			if err != nil {
				return err
			}
			dir, err := stateDir(cfg.State)
			if err != nil {
				return err
			}
			code, err := readCode(cmd, args)
			if err != nil {
				return err
			}
			st, err := client.Login(cmd.Context(), dir, cfg.Control, code)
			if err != nil {
				return err
			}
			reportVersion(cmd.Context(), &client.API{Base: st.Control, Token: st.Token})
			fmt.Fprintf(cmd.OutOrStdout(), "Logged in. This device's tunnel addresses: %s, %s\n", st.IPv4, st.IPv6)
			return nil
		},
	}
	f = addClientFlags(cmd)
	cmd.Flags().String("control", config.DefaultControl, "control plane URL")
	return cmd
}

// readCode takes the access code from the argument, else from a prompt
// at the terminal, without echo, else from the first line of standard
// input ("-" always reads standard input).
func readCode(cmd *cobra.Command, args []string) (string, error) {
	if len(args) == 1 && args[0] != "-" {
		return args[0], nil
	}
	in := cmd.InOrStdin()
	if fd, ok := in.(interface{ Fd() uintptr }); ok && len(args) == 0 && term.IsTerminal(int(fd.Fd())) {
		fmt.Fprint(cmd.ErrOrStderr(), "Access code: ")
		b, err := term.ReadPassword(int(fd.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", fmt.Errorf("reading the access code: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	line, err := bufio.NewReader(io.LimitReader(in, 256)).ReadString('\n')
	if line = strings.TrimSpace(line); line == "" {
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("reading the access code: %w", err)
		}
		return "", errors.New("no access code on standard input (want it on the first line)")
	}
	return line, nil
}

// clientFlags are what every client command reads its settings through:
// --config FILE and --state here, and the flags the command adds itself
// under the same names as config.Client's keys (control, socks, …).
type clientFlags struct{ config string }

func addClientFlags(cmd *cobra.Command) *clientFlags {
	f := &clientFlags{}
	cmd.Flags().StringVar(&f.config, "config", "", "TOML file with client settings: control, state, socks, http_proxy")
	cmd.Flags().String("state", "", "client state directory (default $XDG_CONFIG_HOME/veil)")
	return f
}

// load reads the client settings as serve reads its own: def, then the
// --config file, then VEIL_* variables, then the flags given.
func (f *clientFlags) load(cmd *cobra.Command, def config.Client) (config.Client, error) {
	return config.LoadClient(def, config.Sources{File: f.config, Env: os.LookupEnv, Flags: cmd.Flags()})
}

// stateDir reads the settings and returns the state directory they name.
func (f *clientFlags) stateDir(cmd *cobra.Command) (string, error) {
	cfg, err := f.load(cmd, config.Client{})
	if err != nil {
		return "", err
	}
	return stateDir(cfg.State)
}

// loadState reads the settings and the saved login they point to.
func (f *clientFlags) loadState(cmd *cobra.Command) (dir string, st *client.State, err error) {
	if dir, err = f.stateDir(cmd); err != nil {
		return "", nil, err
	}
	st, err = client.LoadState(dir)
	return dir, st, err
}
