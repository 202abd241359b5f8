package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"veil/internal/apitypes"
)

func newAdminVoucherCmd(f *adminFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "voucher", Short: "Make vouchers for cash payments and resellers"}
	var days, count int
	create := &cobra.Command{
		Use:   "create",
		Short: "Make vouchers and print their codes, one a line (shown only this once)",
		Long: `create makes --count vouchers worth --days of paid time each and prints
their codes, one a line. The service keeps only keyed hashes of the codes:
this output is the only copy.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := f.api(cmd)
			if err != nil {
				return err
			}
			var out apitypes.VoucherBatch
			if err := api.Do(cmd.Context(), http.MethodPost, "/api/v1/admin/vouchers", apitypes.VoucherCreateRequest{Days: days, Count: count}, &out); err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd, out)
			}
			fmt.Fprintln(cmd.OutOrStdout(), strings.Join(out.Codes, "\n"))
			return nil
		},
	}
	create.Flags().IntVar(&days, "days", 30, "days of paid time per voucher")
	create.Flags().IntVar(&count, "count", 1, "how many vouchers")
	cmd.AddCommand(create)
	return cmd
}

func newAdminAffiliateCmd(f *adminFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "affiliate", Short: "Affiliate balances and payouts"}
	list := &cobra.Command{
		Use:   "list",
		Short: "List affiliates: code, sign-ups, payments, balance",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := f.api(cmd)
			if err != nil {
				return err
			}
			var out []apitypes.Affiliate
			if err := api.Do(cmd.Context(), http.MethodGet, "/api/v1/admin/affiliates", nil, &out); err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd, out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CODE\tSIGN-UPS\tPAYMENTS\tBALANCE")
			for _, a := range out {
				var bal []string
				for _, b := range a.Balances {
					bal = append(bal, b.Amount+" "+b.Currency)
				}
				if len(bal) == 0 {
					bal = []string{"0"}
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", a.Code, a.Signups, a.Payments, strings.Join(bal, ", "))
			}
			return tw.Flush()
		},
	}
	payout := &cobra.Command{
		Use:   "payout CODE AMOUNT CURRENCY",
		Short: "Record a payout to an affiliate (such as: payout k3x9m2qz7w 10.00 EUR)",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := f.api(cmd)
			if err != nil {
				return err
			}
			var out apitypes.Affiliate
			req := apitypes.AffiliatePayoutRequest{Amount: args[1], Currency: strings.ToUpper(args[2])}
			if err := api.Do(cmd.Context(), http.MethodPost, "/api/v1/admin/affiliates/"+url.PathEscape(args[0])+"/payouts", req, &out); err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd, out)
			}
			var bal []string
			for _, b := range out.Balances {
				bal = append(bal, b.Amount+" "+b.Currency)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Payout recorded. Balance of %s: %s\n", out.Code, strings.Join(bal, ", "))
			return nil
		},
	}
	cmd.AddCommand(list, payout)
	return cmd
}
