package browser

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// TestMyIPVerdict: the verdict line and the score come from one decision,
// so a visitor who is not behind Veil never sees a green score under a
// red verdict, and the advice shows commands as code, not as backticks.
func TestMyIPVerdict(t *testing.T) {
	cases := []struct {
		name      string
		gateway   bool
		verdict   string
		level     string
		scoreTest func(int) bool
	}{
		{"not through Veil", false, "You are not protected", "bad", func(s int) bool { return s < 50 }},
		{"through a gateway", true, "You are protected: this is the Veil gateway lo-gw-1.", "ok", func(s int) bool { return s >= 80 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := browser(t)
			srv, h, _ := siteWith(t)
			if tc.gateway {
				h.Gateway = func(netip.Addr) (string, bool) { return "lo-gw-1", true }
			}
			// A browser in the address's own time zone: only the
			// protection decides.
			if _, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Europe/Stockholm"}); err != nil {
				t.Fatal(err)
			}
			if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(`#score[data-done="1"]`)); err != nil {
				t.Fatal(err)
			}
			v := texts(t, ctx, "#protection", "#deductions")
			verdict, deductions := v[0], v[1]
			score, _ := strconv.Atoi(attr(t, ctx, "#score", "data-score"))
			if !strings.HasPrefix(verdict, tc.verdict) {
				t.Errorf("verdict %q, want %q", verdict, tc.verdict)
			}
			for _, sel := range []string{"#protection", "#score"} {
				if got := attr(t, ctx, sel, "data-level"); got != tc.level {
					t.Errorf("%s is %q, want %q", sel, got, tc.level)
				}
				if cls := attr(t, ctx, sel, "class"); !strings.Contains(" "+cls+" ", " "+tc.level+" ") {
					t.Errorf("%s has class %q, want %q", sel, cls, tc.level)
				}
			}
			if !tc.scoreTest(score) {
				t.Errorf("score %d%% under a %s verdict", score, tc.level)
			}
			if strings.Contains(deductions, "`") {
				t.Errorf("advice shows backticks:\n%s", deductions)
			}
			if !tc.gateway {
				if code := texts(t, ctx, "#deductions .advice code")[0]; code != "veil connect" {
					t.Errorf("advice's command is %q, want veil connect as code", code)
				}
			}
		})
	}
}
