package wg

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// LoadOrCreateKey reads a private key in wg(8)'s base64 form from path,
// or, when there is no file, generates one and writes it there with mode
// 0600. A gateway whose key survives restarts keeps its clients' tunnels.
func LoadOrCreateKey(path string) (Key, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := ParseKey(strings.TrimSpace(string(b)))
		if err != nil {
			return Key{}, fmt.Errorf("key file %s holds no WireGuard private key (wg genkey writes one)", path)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return Key{}, fmt.Errorf("reading key file: %w", err)
	}
	k, err := GenerateKey()
	if err != nil {
		return Key{}, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return Key{}, fmt.Errorf("creating key directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return LoadOrCreateKey(path) // another process made it first
	}
	if err != nil {
		return Key{}, fmt.Errorf("creating key file: %w", err)
	}
	if _, err := f.WriteString(k.Base64() + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return Key{}, fmt.Errorf("writing key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return Key{}, fmt.Errorf("writing key file: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return Key{}, fmt.Errorf("writing key file: %w", err)
	}
	return k, nil
}
