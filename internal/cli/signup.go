package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"veil/internal/client"
	"veil/internal/config"
)

func newSignupCmd() *cobra.Command {
	var f *clientFlags
	var referral string
	var noLogin bool
	cmd := &cobra.Command{
		Use:   "signup",
		Short: "Create a new account and print its access code (shown only this once)",
		Long: `signup creates a new account at the control plane, doing the proof of work
the service asks of every sign-up (a few seconds of CPU). It prints the new
access code alone on standard output: keep it, it is shown only this once
and the service keeps only a keyed hash of it.

Then it logs in with the code, as veil login does: the session and this
device's key go to the state directory. --no-login only prints the code.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.load(cmd, config.Client{Control: config.DefaultControl})
			if err != nil {
				return err
			}
			out, err := (&client.API{Base: cfg.Control}).Signup(cmd.Context(), referral)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), out.AccessCode)
			fmt.Fprintln(cmd.ErrOrStderr(), "Keep this access code safe: it is your account, and it is shown only this once.")
			if noLogin {
				return nil
			}
			dir, err := stateDir(cfg.State)
			if err != nil {
				return err
			}
			st, err := client.Login(cmd.Context(), dir, cfg.Control, out.AccessCode)
			if err != nil {
				return fmt.Errorf("the account exists, but logging in failed (run veil login with the code): %w", err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Logged in. This device's tunnel addresses: %s, %s\n", st.IPv4, st.IPv6)
			return nil
		},
	}
	f = addClientFlags(cmd)
	cmd.Flags().String("control", config.DefaultControl, "control plane URL")
	cmd.Flags().StringVar(&referral, "referral", "", "an affiliate's referral code")
	cmd.Flags().BoolVar(&noLogin, "no-login", false, "only print the code; do not log in")
	return cmd
}

func newRedeemCmd() *cobra.Command {
	var f *clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "redeem VOUCHER",
		Short: "Redeem a voucher for the logged-in account",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, _, err := f.api(cmd)
			if err != nil {
				return err
			}
			out, err := api.Redeem(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd, out)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Redeemed: %d days added; paid until %s.\n", out.Days, out.PaidUntil.Format(time.DateOnly))
			return nil
		},
	}
	f = addClientFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
