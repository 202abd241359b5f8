package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// Placeholders until the client engineer's commands land.

func newConnectCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "connect",
		Short: "Connect to a Veil gateway",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("veil connect is not available yet")
		},
	}
}

func newStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the tunnel's state",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("veil status is not available yet")
		},
	}
}

func newDisconnectCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "disconnect",
		Short: "Take the tunnel down",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("veil disconnect is not available yet")
		},
	}
}
