package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"veil/internal/apitypes"
	"veil/internal/client"
	"veil/internal/service"
)

// adminFlags are shared by every admin subcommand.
type adminFlags struct {
	control string
	data    string
	json    bool
}

// api returns an API client with the admin token that serve keeps in the
// data directory.
func (f *adminFlags) api() (*client.API, error) {
	path := filepath.Join(f.data, service.AdminTokenFile)
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no admin token at %s: start `veil serve` first, or pass --data", path)
		}
		return nil, fmt.Errorf("reading admin token: %w", err)
	}
	return &client.API{Base: f.control, Token: strings.TrimSpace(string(b))}, nil
}

func newAdminCmd() *cobra.Command {
	f := &adminFlags{}
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Operator commands over the API, with the admin token from the data directory",
	}
	cmd.PersistentFlags().StringVar(&f.control, "control", "http://127.0.0.1:8080", "control plane URL")
	cmd.PersistentFlags().StringVar(&f.data, "data", "./veil-data", "data directory holding the admin token")
	cmd.PersistentFlags().BoolVar(&f.json, "json", false, "print JSON")
	cmd.AddCommand(newAdminAccountCmd(f), newAdminGatewayCmd(f))
	cmd.AddCommand(newAdminPrivacyCmds(f)...)
	return cmd
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
			api, err := f.api()
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
			api, err := f.api()
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
			api, err := f.api()
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
			api, err := f.api()
			if err != nil {
				return err
			}
			return api.Do(context.WithoutCancel(cmd.Context()), http.MethodDelete, "/api/v1/admin/gateways/"+args[0], nil, nil)
		},
	}
	cmd.AddCommand(add, list, remove)
	return cmd
}
