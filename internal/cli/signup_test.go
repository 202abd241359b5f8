package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"veil/internal/account"
	"veil/internal/config"
	"veil/internal/service"
)

// run runs a veil command line and returns its stdout; a non-zero exit
// fails the test.
func run(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := Run(context.Background(), args, &out, &errOut); code != 0 {
		t.Fatalf("veil %s: exit %d: %s", strings.Join(args, " "), code, errOut.String())
	}
	return out.String()
}

// TestSignupAndRedeem: veil signup solves the proof of work and prints
// the code alone, logs in with it, and veil redeem adds a voucher's time;
// the admin commands make vouchers and list affiliates.
func TestSignupAndRedeem(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir, cfg.HTTP, cfg.AdminHTTP, cfg.BuiltinGateway = t.TempDir(), "127.0.0.1:0", "", false
	cfg.SignupPowBits = 12
	svc, err := service.Start(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Stop() })
	control := svc.URL()
	state := t.TempDir()
	t.Setenv("VEIL_CONTROL", control)

	code := strings.TrimSpace(run(t, "signup", "--state", state))
	if _, err := account.NormalizeCode(code); err != nil {
		t.Fatalf("signup printed %q, want the code alone", code)
	}
	if acc := run(t, "account", "--state", state); !strings.Contains(acc, "Trial until") {
		t.Fatalf("veil account after signup:\n%s", acc)
	}
	only := strings.TrimSpace(run(t, "signup", "--no-login", "--state", t.TempDir()))
	if only == code {
		t.Fatal("two sign-ups gave one code")
	}

	admin := []string{"--data", cfg.DataDir, "--control", control}
	vouchers := strings.Fields(run(t, append([]string{"admin", "voucher", "create", "--days", "30", "--count", "3"}, admin...)...))
	if len(vouchers) != 3 {
		t.Fatalf("voucher create printed %q", vouchers)
	}
	if out := run(t, "redeem", "--state", state, vouchers[0]); !strings.Contains(out, "30 days added") {
		t.Fatalf("redeem: %s", out)
	}
	var out, errOut bytes.Buffer
	if Run(context.Background(), []string{"redeem", "--state", state, vouchers[0]}, &out, &errOut) == 0 ||
		!strings.Contains(errOut.String(), "not recognised or already used") {
		t.Fatalf("redeeming twice: %q %q", out.String(), errOut.String())
	}
	if list := run(t, append([]string{"admin", "affiliate", "list"}, admin...)...); !strings.HasPrefix(list, "CODE") {
		t.Fatalf("affiliate list: %q", list)
	}
}
