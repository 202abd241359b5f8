package cli

import (
	"os"

	"github.com/spf13/cobra"

	"veil/internal/config"
	"veil/internal/service"
)

func newServeCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the whole service: API, website, tools and a built-in gateway",
		Long: `serve runs the control plane, the website and privacy tools, and a
built-in WireGuard gateway (gVisor netstack, no root needed).

Configuration comes from defaults, then --config FILE (TOML), then VEIL_*
environment variables (VEIL_HTTP, VEIL_DB, …), then flags.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(config.Sources{File: file, Env: os.LookupEnv, Flags: cmd.Flags()})
			if err != nil {
				return err
			}
			log := newLogger(cmd.ErrOrStderr(), cfg.LogLevel)
			svc, err := service.Start(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			log.Info("serving", "url", svc.URL(), "admin", svc.AdminURL(), "data", cfg.DataDir)
			err = svc.Wait()
			log.Info("stopped")
			return err
		},
	}
	cmd.Flags().StringVar(&file, "config", "", "TOML configuration file")
	config.AddFlags(cmd.Flags(), config.Default())
	return cmd
}
