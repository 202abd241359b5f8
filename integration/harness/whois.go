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
			q, _ := bufio.NewReader(c).ReadString('\n')
			fmt.Fprintf(c, "answer for %s\r\n", strings.TrimSpace(q))
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}
