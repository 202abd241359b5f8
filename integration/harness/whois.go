package harness

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// StartWhois serves whois (RFC 3912) on ip, answering every question
// with "answer for QUESTION", and returns its port.
func StartWhois(tb testing.TB, ip netip.Addr) int {
	tb.Helper()
	return serveTCP(tb, ip, func(c net.Conn) {
		q, _ := bufio.NewReader(c).ReadString('\n')
		fmt.Fprintf(c, "answer for %s\r\n", strings.TrimSpace(q))
	})
}

// StartTCP accepts TCP connections on ip and closes them at once (a port
// that answers, for TCP pings and port checks), and returns its port.
func StartTCP(tb testing.TB, ip netip.Addr) int {
	tb.Helper()
	return serveTCP(tb, ip, func(net.Conn) {})
}

// serveTCP listens on ip until the test ends, handing each connection to
// handle and closing it after, one at a time; it returns the port.
func serveTCP(tb testing.TB, ip netip.Addr, handle func(net.Conn)) int {
	tb.Helper()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			handle(c)
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}
