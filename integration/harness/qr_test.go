package harness

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"testing"

	"github.com/skip2/go-qrcode"
)

// TestTerminalQRRoundTrip prints codes the way `veil wg-config --qr`
// does, for many contents of a WireGuard file's length, and decodes
// each back: codes of every height, odd ones included, must read.
func TestTerminalQRRoundTrip(t *testing.T) {
	for i := range 200 {
		key := make([]byte, 32+i%64)
		rand.Read(key)
		text := fmt.Sprintf("[Interface]\nPrivateKey = %s\nAddress = 10.64.0.%d/32\n", base64.StdEncoding.EncodeToString(key), i)
		code, err := qrcode.New(text, qrcode.Low)
		if err != nil {
			t.Fatal(err)
		}
		printed := code.ToSmallString(false)
		img, err := TerminalQRImage(printed, 4)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeQR(img)
		if err != nil {
			t.Fatalf("content %d: %v", i, err)
		}
		if got != text {
			t.Fatalf("content %d decodes to %q, want %q", i, got, text)
		}
	}
}
