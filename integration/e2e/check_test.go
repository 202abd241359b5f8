package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"testing"

	"veil/integration/harness"
	"veil/internal/cli"
	"veil/internal/client"
	"veil/internal/config"
)

// TestStatusCheck runs `veil status --check` against a
// proxy-mode tunnel held as `veil connect` holds it: the exit check sees
// the built-in gateway, and the DNS leak test, whose zone the test's root
// delegates to serve's leak server, sees only Veil's resolver.
func TestStatusCheck(t *testing.T) {
	const leakZone = "veil-check.test"
	leakAddr := netip.MustParseAddr("127.53.0.5")
	hier := harness.StartDNS(t, harness.DNSConfig{Zone: "veil-e2e.test",
		Delegate: map[string]netip.Addr{leakZone: leakAddr}})
	env := harness.Start(t, harness.Options{DNS: hier, Config: func(c *config.Config) {
		c.DNSLeakZone = leakZone
		c.DNSLeakAddr = netip.AddrPortFrom(leakAddr, uint16(hier.Port)).String()
	}})
	dir := t.TempDir()
	st := env.Login(t, dir, env.CreateAccount(t, 30))
	tun := env.Up(t, st, clientAddr)
	ctx, cancel := context.WithCancel(context.Background())
	held := make(chan error, 1)
	go func() { held <- client.Hold(ctx, dir, tun) }()
	t.Cleanup(func() { cancel(); <-held })
	waitFor(t, "the control socket", func() bool {
		_, err := client.QueryStatus(ctx, dir)
		return err == nil
	})

	var out, errOut bytes.Buffer
	code := cli.Run(ctx, []string{"status", "--check", "--json", "--state", dir}, &out, &errOut)
	var res struct {
		ExitIP    string `json:"exit_ip"`
		Protected bool   `json:"protected"`
		Gateway   string `json:"exit_gateway"`
		DNSLeak   struct {
			Verdict   string            `json:"verdict"`
			Resolvers []json.RawMessage `json:"resolvers"`
		} `json:"dns_leak"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("status --check: exit %d, %v\nstdout %s\nstderr %s", code, err, out.String(), errOut.String())
	}
	if code != 0 || !res.Protected || res.Gateway != env.Config.GatewayName {
		t.Errorf("exit check: code %d, %+v, stderr %s", code, res, errOut.String())
	}
	if res.DNSLeak.Verdict != "no_leak" || len(res.DNSLeak.Resolvers) == 0 {
		t.Errorf("DNS leak test: %+v", res.DNSLeak)
	}
}
