package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"veil/internal/apitypes"
	"veil/internal/client"
	"veil/internal/config"
	"veil/internal/service"
)

// adminFlags are shared by every admin subcommand.
type adminFlags struct {
	config string
	json   bool
}

// api returns an API client with the admin token that serve keeps in the
// data directory. The data directory and the control URL are read as
// serve reads its configuration (config.LoadAdmin), so that one
// --config FILE or one set of VEIL_* variables serves both.
func (f *adminFlags) api(cmd *cobra.Command) (*client.API, error) {
	cfg, err := f.load(cmd)
	if err != nil {
		return nil, err
	}
	return adminAPI(cfg)
}

func (f *adminFlags) load(cmd *cobra.Command) (config.Admin, error) {
	return config.LoadAdmin(config.Sources{File: f.config, Env: os.LookupEnv, Flags: cmd.Flags()})
}

// adminAPI reads the admin token serve wrote into the data directory.
func adminAPI(cfg config.Admin) (*client.API, error) {
	path := filepath.Join(cfg.Data, service.AdminTokenFile)
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no admin token at %s: start `veil serve` first, or pass --data", path)
		}
		return nil, fmt.Errorf("reading admin token: %w", err)
	}
	return &client.API{Base: cfg.Control, Token: strings.TrimSpace(string(b))}, nil
}

func newAdminCmd() *cobra.Command {
	f := &adminFlags{}
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Operator commands over the API, with the admin token from the data directory",
		Long: `Operator commands. They read the data directory (which holds the admin
token) and the control plane's address as serve reads its configuration:
defaults, then --config FILE (serve's file), then VEIL_* variables
(VEIL_DATA, VEIL_HTTP; VEIL_CONTROL names the URL outright), then flags.
The URL defaults to serve's http listener.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.config, "config", "", "serve's TOML configuration file")
	pf.String("control", "", "control plane URL (default: serve's http listener)")
	pf.String("data", config.Default().DataDir, "data directory holding the admin token")
	pf.BoolVar(&f.json, "json", false, "print JSON")
	cmd.AddCommand(newAdminAccountCmd(f), newAdminGatewayCmd(f), newAdminWaitCmd(f), newAdminVoucherCmd(f), newAdminAffiliateCmd(f))
	cmd.AddCommand(newAdminPrivacyCmds(f)...)
	return cmd
}

// newAdminWaitCmd waits for a freshly started serve, so that a script can
// start it in the background and go on: it returns once an admin request
// with the token from the data directory is answered.
func newAdminWaitCmd(f *adminFlags) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "wait",
		Short: "Wait until serve answers admin requests (after starting it in the background)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.load(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			var last error
			for {
				err := pingAdmin(ctx, cfg)
				if err == nil {
					return nil
				}
				if ctx.Err() == nil || last == nil {
					last = err // not the deadline cutting the last try short
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("serve did not answer within %s: %w", timeout, last)
				case <-tick.C:
				}
			}
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "how long to wait")
	return cmd
}

// pingAdmin makes one admin request; it fails while serve is starting
// (no token yet, nothing listening) and when the token is not serve's.
func pingAdmin(ctx context.Context, cfg config.Admin) error {
	api, err := adminAPI(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var out []apitypes.Server
	return api.Do(ctx, http.MethodGet, "/api/v1/admin/gateways", nil, &out)
}

func newAdminAccountCmd(f *adminFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "account", Short: "Manage accounts"}
	var days int
	var email string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an account and print its access code (shown only this once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := f.api(cmd)
			if err != nil {
				return err
			}
			var out apitypes.AccountCreated
			req := apitypes.AccountCreateRequest{Days: days, Email: email}
			if err := api.Do(cmd.Context(), http.MethodPost, "/api/v1/admin/accounts", req, &out); err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd, out)
			}
			fmt.Fprintln(cmd.OutOrStdout(), out.AccessCode)
			return nil
		},
	}
	create.Flags().IntVar(&days, "days", 0, "days of paid time (0: the configured trial)")
	create.Flags().StringVar(&email, "email", "", "optional email for receipts and recovery")
	cmd.AddCommand(create)
	return cmd
}

func newAdminGatewayCmd(f *adminFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "gateway", Short: "Manage gateways"}
	var location, endpoint string
	add := &cobra.Command{
		Use:   "add NAME --location CC-city --endpoint HOST:PORT",
		Short: "Register a gateway and print its token (shown only this once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := f.api(cmd)
			if err != nil {
				return err
			}
			var out apitypes.GatewayCreated
			req := apitypes.GatewayCreateRequest{Name: args[0], Location: location, Endpoint: endpoint}
			if err := api.Do(cmd.Context(), http.MethodPost, "/api/v1/admin/gateways", req, &out); err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd, out)
			}
			fmt.Fprintln(cmd.OutOrStdout(), out.Token)
			return nil
		},
	}
	add.Flags().StringVar(&location, "location", "", "location, e.g. se-sto")
	add.Flags().StringVar(&endpoint, "endpoint", "", "HOST:PORT clients dial")
	add.MarkFlagRequired("location")
	add.MarkFlagRequired("endpoint")

	list := &cobra.Command{
		Use:   "list",
		Short: "List gateways with their load",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := f.api(cmd)
			if err != nil {
				return err
			}
			var out []apitypes.Server
			if err := api.Do(cmd.Context(), http.MethodGet, "/api/v1/admin/gateways", nil, &out); err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd, out)
			}
			printServers(cmd, out)
			return nil
		},
	}
	remove := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a gateway",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := f.api(cmd)
			if err != nil {
				return err
			}
			return api.Do(context.WithoutCancel(cmd.Context()), http.MethodDelete, "/api/v1/admin/gateways/"+args[0], nil, nil)
		},
	}
	cmd.AddCommand(add, list, remove)
	return cmd
}
