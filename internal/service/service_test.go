package service

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"veil/internal/config"
)

func testConfig(t testing.TB, dir string) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.HTTP = "127.0.0.1:0"
	cfg.AdminHTTP = ""
	cfg.WGPort = 0
	return cfg
}

// TestGatewayKeySurvivesRestart: the built-in gateway keeps its key in the
// data directory, so clients' tunnels outlive a restart of serve.
func TestGatewayKeySurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	start := func() *Service {
		svc, err := Start(context.Background(), testConfig(t, dir), nil)
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	svc := start()
	first := svc.Gateway.PublicKey()
	if err := svc.Stop(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, GatewayKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("gateway key file: %v, mode %v", err, fi.Mode().Perm())
	}
	svc = start()
	defer svc.Stop()
	if svc.Gateway.PublicKey() != first {
		t.Fatal("the built-in gateway has a new key after a restart")
	}
}

// TestDataDirSecrets: the files that make up the service's identity are
// created once, private to the operator.
func TestDataDirSecrets(t *testing.T) {
	dir := t.TempDir()
	svc, err := Start(context.Background(), testConfig(t, dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	svc.Stop()
	for _, name := range []string{SecretFile, AdminTokenFile, GatewayKeyFile, SQLiteFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
}
