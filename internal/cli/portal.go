package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"veil/internal/client"
)

func newPortalCmd() *cobra.Command {
	var f *clientFlags
	var window time.Duration
	var checkURL string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "portal",
		Short: "Open the kill switch for a while, to log in to a captive portal",
		Long: `A hotel's or an airport's network often wants a login page (a captive
portal) before it lets anything through, the tunnel included; the kill
switch keeps the browser from reaching that page. ` + "`veil portal`" + ` opens,
for --for (5 minutes by default, 30 at most), the way to it alone: DHCP,
DNS to the network's own resolvers (the system resolver points at them
meanwhile) and HTTP and HTTPS (TCP 80 and 443) outside the tunnel. Then it
seals again by itself, or as soon as the tunnel's gateway answers.
Meanwhile web traffic does not go through the tunnel: log in and nothing
else. The opening carries a kernel timeout, so that a veil process that
dies cannot leave it open. --for 0 seals at once.

It then fetches the check URL (plain HTTP to the control plane's
/generate_204 unless --check-url says otherwise, "off" to skip) and says
whether a portal answers in its place, and where it sends the browser.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := f.stateDir(cmd)
			if err != nil {
				return err
			}
			if window < 0 || window > client.MaxPortalWindow {
				return fmt.Errorf("--for: from 0 to %s", client.MaxPortalWindow)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			until, err := client.OpenPortal(ctx, dir, window)
			if errors.Is(err, client.ErrNotConnected) {
				return errors.New("not connected, and no kill switch is on: nothing stands between this system and a portal; log in to it, then `veil connect`")
			}
			if err != nil {
				return err
			}
			res := portalResult{Open: !until.IsZero()}
			if res.Open {
				res.Until = until.UTC().Format(time.RFC3339)
			}
			w := cmd.OutOrStdout()
			if !asJSON {
				if res.Open {
					fmt.Fprintf(w, "Portal window open until %s (%s): log in to the portal in a browser; the kill switch seals again then, or once the tunnel is up\n",
						until.Local().Format(time.TimeOnly), time.Until(until).Round(time.Second))
				} else {
					fmt.Fprintln(w, "Portal window sealed")
				}
			}
			if res.Open && checkURL != "off" {
				res.Check = portalCheck(ctx, dir, checkURL, w, asJSON)
			}
			if asJSON {
				return printJSON(cmd, res)
			}
			return nil
		},
	}
	f = addClientFlags(cmd)
	cmd.Flags().DurationVar(&window, "for", client.DefaultPortalWindow, "how long the way to the portal stays open (0: seal now)")
	cmd.Flags().StringVar(&checkURL, "check-url", "", `plain HTTP URL that answers 204 unless a portal intercepts it (default: the control plane's /generate_204; "off": no check)`)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// portalResult is `veil portal --json`.
type portalResult struct {
	Open  bool                `json:"open"`
	Until string              `json:"until,omitempty"`
	Check *client.PortalCheck `json:"check,omitempty"`
}

// portalCheck fetches the check URL (checkURL, or the control plane's)
// and prints what answered; nil if it could not tell.
func portalCheck(ctx context.Context, dir, checkURL string, w io.Writer, quiet bool) *client.PortalCheck {
	say := func(format string, a ...any) {
		if !quiet {
			fmt.Fprintf(w, format, a...)
		}
	}
	if checkURL == "" {
		st, err := client.LoadState(dir)
		if err == nil {
			checkURL, err = client.PortalCheckURL(st.Control)
		}
		if err != nil {
			say("No portal check: %v\n", err)
			return nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pc, err := client.CheckPortal(ctx, &http.Client{}, checkURL)
	switch {
	case err != nil:
		say("The portal check got no answer (%v)\n", err)
		return nil
	case !pc.Intercepted:
		say("No captive portal answers for %s: the network lets HTTP through\n", checkURL)
	case pc.Location != "":
		say("A captive portal answers for %s: open %s\n", checkURL, pc.Location)
	default:
		say("A captive portal answers for %s (HTTP %d): open any plain http:// address in a browser\n", checkURL, pc.Status)
	}
	return &pc
}
