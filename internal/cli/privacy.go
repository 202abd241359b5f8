package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"veil/internal/apitypes"
	"veil/internal/config"
	"veil/internal/privacy"
)

// newAdminPrivacyCmds returns the privacy engine's admin commands:
// retention, policy, support, stats, legal hold and billing.
func newAdminPrivacyCmds(f *adminFlags) []*cobra.Command {
	return []*cobra.Command{newAdminRetentionCmd(f), newAdminPolicyCmd(f), newAdminSupportCmd(f), newAdminStatsCmd(f), newAdminHoldCmd(f), newAdminBillingCmd(f)}
}

func newAdminRetentionCmd(f *adminFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "retention", Short: "Retention of stored data"}
	run := &cobra.Command{
		Use:   "run",
		Short: "Delete what the data inventory says has expired, now, and print what went by category",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := f.api(cmd)
			if err != nil {
				return err
			}
			var out []privacy.Deleted
			if err := api.Do(cmd.Context(), http.MethodPost, "/api/v1/admin/retention", struct{}{}, &out); err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd, out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CATEGORY\tWHAT\tDELETED")
			for _, d := range out {
				fmt.Fprintf(tw, "%s\t%s\t%d\n", d.Category, d.What, d.Count)
			}
			return tw.Flush()
		},
	}
	cmd.AddCommand(run)
	return cmd
}

func newAdminPolicyCmd(f *adminFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "The privacy policy"}
	publish := &cobra.Command{
		Use:   "publish FILE",
		Short: "Publish a new policy version from the operator's text in FILE; every account with an email gets a notice",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := config.ReadFile(args[0], config.MaxTextFile)
			if err != nil {
				return fmt.Errorf("reading policy text: %w", err)
			}
			api, err := f.api(cmd)
			if err != nil {
				return err
			}
			var out apitypes.Published
			if err := api.Do(cmd.Context(), http.MethodPost, "/api/v1/admin/policy", apitypes.PublishRequest{Prose: string(b)}, &out); err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd, out)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "published version %d; %d notices queued\n", out.Version, out.Notices)
			return nil
		},
	}
	cmd.AddCommand(publish)
	return cmd
}

func newAdminSupportCmd(f *adminFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "support", Short: "Support tickets"}
	var status string
	list := &cobra.Command{
		Use:   "list",
		Short: "List tickets, newest activity first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := f.api(cmd)
			if err != nil {
				return err
			}
			var out []apitypes.TicketView
			if err := api.Do(cmd.Context(), http.MethodGet, "/api/v1/admin/support?status="+url.QueryEscape(status), nil, &out); err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd, out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATUS\tUPDATED\tSUBJECT")
			for _, t := range out {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", t.ID, t.Status, t.UpdatedAt.Format("2006-01-02 15:04"), t.Subject)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&status, "status", "", "open, answered or closed; empty: all")
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show a ticket with its messages",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return ticketCall(cmd, f, http.MethodGet, args[0], "", nil)
		},
	}
	var closeIt bool
	reply := &cobra.Command{
		Use:   "reply ID MESSAGE",
		Short: "Reply to a ticket; the person is notified by mail when they gave an email",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := apitypes.TicketMessage{Message: args[1], Close: closeIt}
			return ticketCall(cmd, f, http.MethodPost, args[0], "/reply", req)
		},
	}
	reply.Flags().BoolVar(&closeIt, "close", false, "close the ticket with this reply")
	cmd.AddCommand(list, show, reply)
	return cmd
}

// ticketCall sends one admin call about ticket id and prints the ticket
// it answers with.
func ticketCall(cmd *cobra.Command, f *adminFlags, method, id, suffix string, body any) error {
	if _, err := strconv.ParseInt(id, 10, 64); err != nil {
		return fmt.Errorf("ticket id must be a number")
	}
	api, err := f.api(cmd)
	if err != nil {
		return err
	}
	var t apitypes.TicketView
	if err := api.Do(cmd.Context(), method, "/api/v1/admin/support/"+id+suffix, body, &t); err != nil {
		return err
	}
	if f.json {
		return printJSON(cmd, t)
	}
	printTicket(cmd, t)
	return nil
}

func printTicket(cmd *cobra.Command, t apitypes.TicketView) {
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "#%d %s (%s)\n", t.ID, t.Subject, t.Status)
	for _, m := range t.Messages {
		who := "user"
		if m.FromOperator {
			who = "operator"
		}
		fmt.Fprintf(w, "\n-- %s, %s\n%s\n", who, m.CreatedAt.Format("2006-01-02 15:04"), m.Body)
	}
}

func newAdminStatsCmd(f *adminFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "stats",
		Short: "Client counts per OS version, app version and day (aggregate only)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := f.api(cmd)
			if err != nil {
				return err
			}
			var out []apitypes.ClientCount
			if err := api.Do(cmd.Context(), http.MethodGet, "/api/v1/admin/stats", nil, &out); err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd, out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DAY\tOS\tAPP\tCOUNT")
			for _, c := range out {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", c.Day, c.OSVersion, c.AppVersion, c.Count)
			}
			return tw.Flush()
		},
	}
}

func newAdminBillingCmd(f *adminFlags) *cobra.Command {
	var from, to string
	cmd := &cobra.Command{
		Use:   "billing [--from YYYY-MM-DD] [--to YYYY-MM-DD] | billing attach RECORD-ID PAYMENT-REFERENCE",
		Short: "Billing records (payments processors reported), for the accounts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := f.api(cmd)
			if err != nil {
				return err
			}
			q := url.Values{}
			if from != "" {
				q.Set("from", from)
			}
			if to != "" {
				q.Set("to", to)
			}
			var out []apitypes.BillingRecord
			if err := api.Do(cmd.Context(), http.MethodGet, "/api/v1/admin/billing?"+q.Encode(), nil, &out); err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd, out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DATE\tPROCESSOR\tREFERENCE\tPRODUCT\tDAYS\tAMOUNT\tACCOUNT")
			for _, r := range out {
				account := "detached"
				if r.Account != 0 {
					account = strconv.FormatInt(r.Account, 10)
				}
				if r.RefundedAt != nil {
					account += ", refunded " + r.RefundedAt.Format(time.DateOnly)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d.%02d %s\t%s\n", r.CreatedAt.Format(time.DateOnly), r.Processor,
					r.Reference, r.Product, r.Days, r.AmountCents/100, r.AmountCents%100, r.Currency, account)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "first day (UTC)")
	cmd.Flags().StringVar(&to, "to", "", "day after the last (UTC)")
	cmd.AddCommand(&cobra.Command{
		Use:   "attach RECORD-ID PAYMENT-REFERENCE",
		Short: "Give a detached payment to the account whose payment reference the customer gives",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := f.api(cmd)
			if err != nil {
				return err
			}
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("record id %q is not a number", args[0])
			}
			return api.Do(cmd.Context(), http.MethodPost, "/api/v1/admin/billing/"+strconv.FormatInt(id, 10)+"/attach",
				apitypes.BillingAttachRequest{PaymentReference: args[1]}, nil)
		},
	})
	return cmd
}

func newAdminHoldCmd(f *adminFlags) *cobra.Command {
	var code, email string
	var release bool
	cmd := &cobra.Command{
		Use:   "legal-hold (--code CODE | --email EMAIL) [--release]",
		Short: "Suspend (or, with --release, resume) retention deletion of an account",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := f.api(cmd)
			if err != nil {
				return err
			}
			var out map[string]int
			req := apitypes.LegalHoldRequest{AccessCode: code, Email: email, Hold: !release}
			if err := api.Do(cmd.Context(), http.MethodPost, "/api/v1/admin/legal-hold", req, &out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d account(s) updated\n", out["accounts"])
			return nil
		},
	}
	cmd.Flags().StringVar(&code, "code", "", "the account's access code")
	cmd.Flags().StringVar(&email, "email", "", "every account with this email")
	cmd.Flags().BoolVar(&release, "release", false, "lift the hold")
	return cmd
}
