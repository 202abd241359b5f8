// Package wg is Veil's thin adapter over wireguard-go: keys, a device on a
// kernel TUN or on a gVisor netstack, single-peer changes and aggregate
// statistics. Gateway and client both build on it; neither talks to
// wireguard-go's text protocol directly.
package wg

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
)

// KeyLen is the length of a WireGuard key in bytes.
const KeyLen = 32

// ErrInvalidKey is returned (wrapped) for a key that does not parse.
var ErrInvalidKey = errors.New("invalid WireGuard key")

// Key is a Curve25519 private or public key. Its String and LogValue hide
// it, so a key passed to a logger or to fmt by mistake is not disclosed;
// Base64 gives the wire form on purpose.
type Key [KeyLen]byte

// GenerateKey returns a new random private key, clamped as WireGuard does.
func GenerateKey() (Key, error) {
	var k Key
	if _, err := rand.Read(k[:]); err != nil {
		return Key{}, fmt.Errorf("generating key: %w", err)
	}
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
	return k, nil
}

// ParseKey parses the base64 form used by wg(8) and the API.
func ParseKey(s string) (Key, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != KeyLen {
		return Key{}, ErrInvalidKey
	}
	return Key(b), nil
}

// Public returns the public key of the private key k.
func (k Key) Public() Key {
	priv, err := ecdh.X25519().NewPrivateKey(k[:])
	if err != nil {
		// NewPrivateKey fails only on a wrong length, impossible here.
		panic(err)
	}
	return Key(priv.PublicKey().Bytes())
}

// IsZero reports whether k is the zero key (unset).
func (k Key) IsZero() bool { return k == Key{} }

// Base64 returns the wire form of k, as wg(8) and the API write it.
func (k Key) Base64() string { return base64.StdEncoding.EncodeToString(k[:]) }

// hex returns the form of wireguard-go's configuration protocol.
func (k Key) hex() string { return hex.EncodeToString(k[:]) }

// String hides the key.
func (k Key) String() string { return "key:redacted" }

// LogValue implements slog.LogValuer; it hides the key.
func (k Key) LogValue() slog.Value { return slog.StringValue("key:redacted") }
