package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// On a stream (TLS, or a QUIC stream) each WireGuard message is preceded
// by its length, two bytes big-endian.
const lenSize = 2

// MaxMessage is the longest message a stream carries. WireGuard's own
// messages are at most the tunnel MTU plus 32 bytes; this leaves room for
// an MTU up to 8 KiB and refuses anything longer before reading it.
const MaxMessage = 8192

// minMessage is WireGuard's shortest message: a transport message with
// no payload (a keepalive).
const minMessage = 32

// ErrFrame is wrapped by the error of a stream that sent a length
// outside minMessage..MaxMessage: it is not carrying WireGuard.
var ErrFrame = errors.New("transport: bad frame length")

// appendFrame appends msg with its length prefix to b.
func appendFrame(b, msg []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(msg)))
	return append(b, msg...)
}

// readFrame reads one message into buf, which must hold MaxMessage bytes,
// and returns its length.
func readFrame(r io.Reader, buf []byte) (int, error) {
	var hdr [lenSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, err
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n < minMessage || n > MaxMessage {
		return 0, fmt.Errorf("%w: %d", ErrFrame, n)
	}
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	return n, nil
}

// sniffLen is how many bytes looksLikeWireGuard needs.
const sniffLen = lenSize + 4

// looksLikeWireGuard reports whether a stream's first bytes are a framed
// WireGuard message: a plausible length, then a message type 1 to 4 and
// three zero bytes. An HTTP request (a method in ASCII, or HTTP/2's
// "PRI * HTTP/2.0" preface) never looks like that.
func looksLikeWireGuard(b []byte) bool {
	if len(b) < sniffLen {
		return false
	}
	n := int(binary.BigEndian.Uint16(b))
	return n >= minMessage && n <= MaxMessage &&
		b[2] >= 1 && b[2] <= 4 && b[3] == 0 && b[4] == 0 && b[5] == 0
}
