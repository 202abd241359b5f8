// Package account holds the rules of Veil's accounts: the 16-digit access
// code that is the only credential, its keyed hash (the only form the store
// keeps), and session tokens.
package account

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CodeDigits is the length of an access code.
const CodeDigits = 16

// ErrMalformedCode is returned for input that cannot be an access code.
var ErrMalformedCode = errors.New("an access code is 16 digits")

// NewCode draws a uniformly random 16-digit access code from crypto/rand.
func NewCode() (string, error) {
	max := new(big.Int).Exp(big.NewInt(10), big.NewInt(CodeDigits), nil)
	n, err := rand.Int(rand.Reader, max)
	if err != nil {
		return "", fmt.Errorf("drawing access code: %w", err)
	}
	return fmt.Sprintf("%0*d", CodeDigits, n), nil
}

// NormalizeCode accepts a code as people type it ("1234 5678-9012 3456")
// and returns the 16 digits, or ErrMalformedCode.
func NormalizeCode(s string) (string, error) {
	if len(s) > 64 {
		return "", ErrMalformedCode
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-':
		default:
			return "", ErrMalformedCode
		}
	}
	if b.Len() != CodeDigits {
		return "", ErrMalformedCode
	}
	return b.String(), nil
}

// FormatCode groups a code in fours for display: "1234 5678 9012 3456".
func FormatCode(code string) string {
	var parts []string
	for i := 0; i < len(code); i += 4 {
		parts = append(parts, code[i:min(i+4, len(code))])
	}
	return strings.Join(parts, " ")
}

// Hasher computes keyed hashes of access codes and tokens, so a stolen
// database yields no usable code: without the secret, 10^16 candidates
// cannot be checked offline.
type Hasher struct {
	secret []byte
}

// NewHasher returns a Hasher keyed with secret, which must be at least 32
// bytes.
func NewHasher(secret []byte) (*Hasher, error) {
	if len(secret) < 32 {
		return nil, errors.New("server secret shorter than 32 bytes")
	}
	return &Hasher{secret: secret}, nil
}

// Code returns the keyed hash of a normalized access code.
func (h *Hasher) Code(code string) []byte { return h.sum("access-code", code) }

// Token returns the keyed hash of a bearer token.
func (h *Hasher) Token(token string) []byte { return h.sum("token", token) }

func (h *Hasher) sum(kind, s string) []byte {
	m := hmac.New(sha256.New, h.secret)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(s))
	return m.Sum(nil)
}

// NewToken draws a random bearer token (256 bits, URL-safe base64).
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("drawing token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// LoadOrCreateSecret reads a 32-byte secret from path, creating it with
// mode 0600 on first use. Several processes may race to create it: the
// file is created exclusively, so all end with the same secret.
func LoadOrCreateSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) < 32 {
			return nil, fmt.Errorf("secret %s is shorter than 32 bytes; restore it from backup", path)
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading secret: %w", err)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("drawing secret: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating secret directory: %w", err)
	}
	if err := writeExclusive(path, secret); err != nil {
		if errors.Is(err, os.ErrExist) {
			return LoadOrCreateSecret(path)
		}
		return nil, err
	}
	return secret, nil
}

// writeExclusive writes data to a new file at path, mode 0600, through a
// temporary file and a hard link so that no reader ever sees a partial file.
func writeExclusive(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("creating secret: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing secret: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing secret: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing secret: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		return fmt.Errorf("installing secret: %w", err)
	}
	return nil
}

// PaymentRef is the reference an account gives a payment processor at
// checkout, which the processor's notification carries back: the
// account's number and a keyed check code, so that it names the account
// without the access code, cannot be guessed for another account, and
// needs nothing stored.
func (h *Hasher) PaymentRef(accountID int64) string {
	id := strconv.FormatInt(accountID, 10)
	return id + "-" + h.paymentCheck(id)
}

// ParsePaymentRef returns the account a reference from PaymentRef names;
// false for anything else.
func (h *Hasher) ParsePaymentRef(ref string) (int64, bool) {
	id, check, ok := strings.Cut(strings.TrimSpace(ref), "-")
	n, err := strconv.ParseInt(id, 10, 64)
	if !ok || err != nil || n <= 0 || strconv.FormatInt(n, 10) != id {
		return 0, false
	}
	if !hmac.Equal([]byte(check), []byte(h.paymentCheck(id))) {
		return 0, false
	}
	return n, true
}

func (h *Hasher) paymentCheck(id string) string {
	return strings.ToLower(base32.StdEncoding.EncodeToString(h.sum("payment-ref", id))[:10])
}
