// Package client is Veil's user side: the saved login, the API calls a
// client makes, and the tunnel it holds (tun or proxy mode, kill switch).
package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// ErrNotLoggedIn is returned when the state directory holds no login.
var ErrNotLoggedIn = errors.New("not logged in: run `veil login ACCESS_CODE` first")

// State is what `veil login` saves, mode 0600 in the state directory. The
// access code is kept so that an expired session can be renewed without
// asking again, as other VPN clients do; it never leaves this machine
// except to the control plane.
type State struct {
	Control    string    `json:"control"`
	AccessCode string    `json:"access_code"`
	Token      string    `json:"token"`
	Expires    time.Time `json:"token_expires"`
	// PrivateKey is the device's WireGuard private key, base64. It is made
	// on this machine and never sent anywhere.
	PrivateKey string `json:"private_key"`
	// KeyCreated is when PrivateKey was made; the key is replaced
	// KeyRotation after it (zero: at the first connection's start).
	KeyCreated time.Time `json:"key_created,omitzero"`
	DeviceID   int64     `json:"device_id"`
	IPv4       string    `json:"ipv4"`
	IPv6       string    `json:"ipv6"`

	// HTTP carries the API calls of API; nil: a plain client. It is not
	// saved: `veil connect` sets it to reach the control plane through a
	// kill switch left on (OpenLockdown).
	HTTP *http.Client `json:"-"`
}

const stateFile = "state.json"

// DefaultDir is $XDG_CONFIG_HOME/veil, or ~/.config/veil.
func DefaultDir() (string, error) {
	base, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding the config directory: %w", err)
	}
	return filepath.Join(base, "veil"), nil
}

// LoadState reads the state in dir, or ErrNotLoggedIn.
func LoadState(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotLoggedIn
	}
	if err != nil {
		return nil, fmt.Errorf("reading client state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("client state %s is corrupt (log in again): %w", filepath.Join(dir, stateFile), err)
	}
	if s.Control == "" || s.PrivateKey == "" {
		return nil, ErrNotLoggedIn
	}
	return &s, nil
}

// Save writes the state atomically with mode 0600, the directory 0700.
func (s *State) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating state directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("securing state directory: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".state-*")
	if err != nil {
		return fmt.Errorf("saving client state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("saving client state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("saving client state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("saving client state: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, stateFile)); err != nil {
		return fmt.Errorf("saving client state: %w", err)
	}
	return nil
}

// Forget removes the saved login and device key from dir.
func Forget(dir string) error {
	// The pre-shared key is bound to the device key, which goes too.
	if err := os.Remove(filepath.Join(dir, pqFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	err := os.Remove(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
