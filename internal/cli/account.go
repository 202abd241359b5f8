package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newAccountCmd() *cobra.Command {
	var f *clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "account",
		Short: "Show the logged-in account: plan, paid time, devices, payment reference",
		Long: `account shows the account this device is logged in to: its plan, until
when it is paid (or in trial), how many devices it has, and the payment
reference to give a payment processor when paying (it names the account
without the access code).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, st, err := f.loadState(cmd)
			if err != nil {
				return err
			}
			api, err := st.API(cmd.Context(), dir)
			if err != nil {
				return err
			}
			acc, err := api.Account(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd, acc)
			}
			status := "inactive: pay to connect"
			if acc.Active {
				status = "active"
			}
			day := func(t *time.Time) string {
				if t == nil {
					return "-"
				}
				return t.Format(time.DateOnly)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "Plan:\t%s (%s)\n", acc.Plan, status)
			fmt.Fprintf(tw, "Paid until:\t%s\n", day(acc.PaidUntil))
			fmt.Fprintf(tw, "Trial until:\t%s\n", day(acc.TrialUntil))
			fmt.Fprintf(tw, "Devices:\t%d of %d\n", acc.Devices, acc.MaxDevices)
			fmt.Fprintf(tw, "Payment reference:\t%s\n", acc.PaymentReference)
			if acc.CheckoutURL != "" {
				fmt.Fprintf(tw, "Pay at:\t%s\n", acc.CheckoutURL)
			}
			for _, l := range acc.PayLinks {
				fmt.Fprintf(tw, "Pay for %s:\t%s\n", l.Name, l.URL)
			}
			return tw.Flush()
		},
	}
	f = addClientFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
