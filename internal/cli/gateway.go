package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// Placeholder until the gateway engineer's command lands.
func newGatewayCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "gateway",
		Short: "Run a WireGuard gateway for a control plane",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("veil gateway is not available yet")
		},
	}
}
