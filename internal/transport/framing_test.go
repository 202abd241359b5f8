package transport

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func wgMsg(typ byte, n int) []byte {
	m := make([]byte, n)
	m[0] = typ
	for i := 4; i < n; i++ {
		m[i] = byte(i)
	}
	return m
}

func TestFrameRoundTrip(t *testing.T) {
	var b []byte
	msgs := [][]byte{wgMsg(1, 148), wgMsg(4, 32), wgMsg(4, MaxMessage)}
	for _, m := range msgs {
		b = appendFrame(b, m)
	}
	r := bytes.NewReader(b)
	buf := make([]byte, MaxMessage)
	for i, want := range msgs {
		n, err := readFrame(r, buf)
		if err != nil || !bytes.Equal(buf[:n], want) {
			t.Fatalf("frame %d: %d bytes, %v", i, n, err)
		}
	}
	if _, err := readFrame(r, buf); err != io.EOF {
		t.Fatalf("after the last frame: %v, want EOF", err)
	}
}

func TestFrameBadInput(t *testing.T) {
	buf := make([]byte, MaxMessage)
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"oversized length", []byte{0xff, 0xff, 1, 0, 0, 0}, ErrFrame},
		{"just over the limit", []byte{(MaxMessage + 1) >> 8, (MaxMessage + 1) & 0xff, 4}, ErrFrame},
		{"too short for WireGuard", []byte{0, 8, 4, 0, 0, 0, 0, 0, 0, 0}, ErrFrame},
		{"zero length", []byte{0, 0}, ErrFrame},
		{"closed inside the length", []byte{0}, io.ErrUnexpectedEOF},
		{"closed inside the message", append([]byte{0, 148}, wgMsg(1, 100)...), io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readFrame(bytes.NewReader(tt.in), buf)
			if !errors.Is(err, tt.want) {
				t.Fatalf("readFrame = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestLooksLikeWireGuard(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want bool
	}{
		{"initiation", appendFrame(nil, wgMsg(1, 148)), true},
		{"response", appendFrame(nil, wgMsg(2, 92)), true},
		{"transport", appendFrame(nil, wgMsg(4, 1452)), true},
		{"HTTP/1.1 GET", []byte("GET / HTTP/1.1\r\n"), false},
		{"HTTP/2 preface", []byte("PRI * HTTP/2.0\r\n"), false},
		{"type 5", appendFrame(nil, wgMsg(5, 148)), false},
		{"reserved bytes set", append([]byte{0, 148, 1, 0, 1, 0}, make([]byte, 146)...), false},
		{"too short", []byte{0, 148, 1}, false},
		{"length too large", []byte{0xff, 0xff, 1, 0, 0, 0}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := looksLikeWireGuard(tt.in); got != tt.want {
				t.Fatalf("looksLikeWireGuard = %v, want %v", got, tt.want)
			}
		})
	}
}
