package e2e

import (
	"bytes"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"veil/integration/harness"
	"veil/internal/config"
)

// TestMetricsPassPromtool: the operator listener's /metrics, scraped from
// a running service whose built-in gateway has carried traffic, passes
// `promtool check metrics` (Prometheus's naming and format rules: a
// counter's name ends in _total, every metric has help and a type).
func TestMetricsPassPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is missing (Debian package prometheus; scripts/test-deps.sh installs it)")
		}
		t.Skip("promtool not installed (Debian package prometheus; scripts/test-deps.sh installs it)")
	}
	loop := netip.MustParseAddr("127.0.0.1")
	echo := harness.StartEcho(t, loop)
	env := harness.Start(t, harness.Options{Config: func(c *config.Config) { c.AdminHTTP = "127.0.0.1:0" }})
	st := env.Login(t, t.TempDir(), env.CreateAccount(t, 30))
	tun := env.Up(t, st, clientAddr)
	if _, err := harness.Get(harness.SOCKSClient(t, tun.SOCKSAddr(), 20*time.Second), echo.URL+"/"); err != nil {
		t.Fatalf("traffic through the built-in gateway: %v", err)
	}

	resp, err := http.Get(env.Svc.AdminURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d, %v", resp.StatusCode, err)
	}
	for _, want := range []string{"veil_gateway_rx_bytes_total{", "veil_gateway_tx_bytes_total{", "veil_gateway_peers{"} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}

	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
