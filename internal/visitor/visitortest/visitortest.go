// Package visitortest helps test what package visitor shares out: a
// visitor that asks and never reads, and a wait for a slot to change
// hands.
package visitortest

import (
	"io"
	"net"
	"testing"
	"time"
)

// Stall sends GET requestURI to the HTTP server at addr over a connection
// with a small receive buffer, and never reads the answer: the slowest
// reader there is. The connection closes when the test ends.
func Stall(tb testing.TB, addr, requestURI string) {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	c.(*net.TCPConn).SetReadBuffer(4 << 10)
	if _, err := io.WriteString(c, "GET "+requestURI+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		tb.Fatal(err)
	}
}

// WaitStatus calls status until it answers want, and fails the test,
// saying what, when it has not after a minute: a bound for a test that
// would otherwise hang, not a measure of speed.
func WaitStatus(tb testing.TB, what string, want int, status func() int) {
	tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		got := status()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: still %d, want %d", what, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
