package browser

import (
	"fmt"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"veil/integration/harness"
	"veil/internal/web"
)

// TestToolsInGerman opens the tools under /de/: what their scripts write
// (the score's deductions, the DNS leak verdict, the ping's lines) is
// German, from the messages the page hands the script, and numbers are
// formatted as German writes them.
func TestToolsInGerman(t *testing.T) {
	ctx := browser(t)
	_, _, mux := siteWith(t)
	srv := httptest.NewServer(web.Localize(mux))
	t.Cleanup(srv.Close)
	if _, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "America/New_York"}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/de/"), chromedp.WaitVisible(`#score[data-done="1"]`)); err != nil {
		t.Fatal(err)
	}
	v := texts(t, ctx, "#score-card p", "#score", "#deductions", "#protection", "#check-tz", "#check-dns")
	label, score, deductions, verdict, tz, dns := v[0], v[1], v[2], v[3], v[4], v[5]
	t.Logf("German My IP: %q %q %q\n%s", label, score, verdict, deductions)
	if label != "Anonymitätswert" {
		t.Errorf("score label %q", label)
	}
	// German puts a (narrow) no-break space between number and %.
	if !regexp.MustCompile(`^\d{1,3}[\x{00a0}\x{202f} ]%$`).MatchString(score) {
		t.Errorf("score %q is not a German percentage", score)
	}
	for _, want := range []string{"Zeitzone passt nicht zur Adresse", "Nicht über Veil verbunden", "Was tun:", "Ihr Browser meldet America/New_York"} {
		if !strings.Contains(deductions, want) {
			t.Errorf("deductions lack %q:\n%s", want, deductions)
		}
	}
	for _, english := range []string{"What to do", "Time zone does not match", "Not connected"} {
		if strings.Contains(deductions, english) {
			t.Errorf("deductions still say %q:\n%s", english, deductions)
		}
	}
	if !strings.HasPrefix(verdict, "Sie sind nicht geschützt") {
		t.Errorf("verdict %q", verdict)
	}
	if !strings.HasPrefix(tz, "Browser America/New_York, Adresse Europe/Stockholm") {
		t.Errorf("time zone check %q", tz)
	}
	if !strings.Contains(dns, "Noch hat kein Resolver") {
		t.Errorf("DNS check %q", dns)
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/de/dnsleak"), chromedp.WaitVisible(`#verdict[data-verdict]`)); err != nil {
		t.Fatal(err)
	}
	if got := texts(t, ctx, "#verdict", "#start"); got[0] != "Noch hat kein Resolver nach den Testnamen gefragt." || got[1] != "Test starten" {
		t.Errorf("German DNS leak page: %q", got)
	}

	port := fmt.Sprint(harness.StartTCP(t, netip.MustParseAddr("127.0.0.1")))
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/de/ping"),
		chromedp.SendKeys("#host", "127.0.0.1"), chromedp.SetValue("#proto", "tcp"), chromedp.SendKeys("#port", port),
		chromedp.Click("#ping-form button")); err != nil {
		t.Fatal(err)
	}
	summary, err := chromedp.Run(ctx, chromedp.Poll[string](`document.getElementById("live-summary").textContent ||
		(!document.getElementById("stream-error").hidden && "error: " + document.getElementById("stream-error").textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	lines := texts(t, ctx, "#live-lines", "#live-title")
	loc, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.pathname`))
	t.Logf("German ping: %q; %q", summary, lines)
	if !strings.HasPrefix(summary, "4 gesendet, 4 empfangen; min. ") || !strings.Contains(summary, " ms") {
		t.Errorf("ping summary %q", summary)
	}
	// Ø with two decimals after a German comma.
	if !regexp.MustCompile(`Ø \d+,\d\d ms`).MatchString(summary) {
		t.Errorf("ping average is not German: %q", summary)
	}
	if !strings.Contains(lines[0], "Anfrage 1") || !strings.Contains(lines[1], "TCP-Port "+port) {
		t.Errorf("ping lines %q", lines)
	}
	if loc != "/de/ping" {
		t.Errorf("the address bar left the German page: %q", loc)
	}
}
