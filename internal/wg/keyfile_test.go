package wg

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d", "gateway.key")
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v", err, fi.Mode().Perm())
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil || k2 != k1 {
		t.Fatalf("second load gave another key (%v)", err)
	}
	b, _ := os.ReadFile(path)
	if strings.TrimSpace(string(b)) != k1.Base64() {
		t.Errorf("file is not the key in wg(8) form")
	}
	bad := filepath.Join(t.TempDir(), "bad.key")
	os.WriteFile(bad, []byte("not a key\n"), 0o600)
	if _, err := LoadOrCreateKey(bad); err == nil || !strings.Contains(err.Error(), "wg genkey") {
		t.Errorf("corrupt key file: %v", err)
	}
}
