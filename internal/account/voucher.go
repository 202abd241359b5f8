package account

import (
	"crypto/rand"
	"errors"
	"strings"
)

// Vouchers are prepaid time, sold for cash or by resellers: a code of
// VoucherChars letters and digits from an alphabet without look-alikes
// (no 0/O, 1/I/L, U), shown in groups of four. 20 characters of 30
// symbols are 98 bits: guessing one is hopeless, and redemption attempts
// are throttled besides.
const (
	VoucherChars    = 20
	voucherAlphabet = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
)

// VoucherExample is a code in the form vouchers take, for a form's hint.
const VoucherExample = "ABCD-EFGH-JKMN-PQRS-TVWX"

// ErrMalformedVoucher is returned for input that cannot be a voucher code.
var ErrMalformedVoucher = errors.New("a voucher code is 20 letters and digits, such as " + VoucherExample)

// NewVoucher draws a random voucher code, grouped for display.
func NewVoucher() (string, error) {
	b := make([]byte, VoucherChars)
	out := make([]byte, 0, VoucherChars)
	for len(out) < VoucherChars {
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		for _, c := range b {
			// 240 is the largest multiple of 30 below 256: no bias.
			if c < 240 && len(out) < VoucherChars {
				out = append(out, voucherAlphabet[int(c)%len(voucherAlphabet)])
			}
		}
	}
	return FormatVoucher(string(out)), nil
}

// FormatVoucher groups a normalized code in fours with dashes.
func FormatVoucher(code string) string {
	var parts []string
	for i := 0; i < len(code); i += 4 {
		parts = append(parts, code[i:min(i+4, len(code))])
	}
	return strings.Join(parts, "-")
}

// NormalizeVoucher accepts a code as people type it (any case, spaces or
// dashes, O for 0 and I or L for 1 are not in the alphabet and refused)
// and returns its 20 characters, or ErrMalformedVoucher.
func NormalizeVoucher(s string) (string, error) {
	if len(s) > 64 {
		return "", ErrMalformedVoucher
	}
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch {
		case r == ' ' || r == '-':
		case r < 128 && strings.ContainsRune(voucherAlphabet, r):
			b.WriteRune(r)
		default:
			return "", ErrMalformedVoucher
		}
	}
	if b.Len() != VoucherChars {
		return "", ErrMalformedVoucher
	}
	return b.String(), nil
}

// Voucher returns the keyed hash of a normalized voucher code.
func (h *Hasher) Voucher(code string) []byte { return h.sum("voucher", code) }

// NewReferralCode draws an affiliate's referral code: 10 lower-case
// letters and digits, for a link such as /r/k3x9m2qz7w.
func NewReferralCode() (string, error) {
	c, err := NewVoucher()
	if err != nil {
		return "", err
	}
	return strings.ToLower(strings.ReplaceAll(c, "-", "")[:10]), nil
}
