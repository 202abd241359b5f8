//go:build linux

package netns

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// The test binary doubles as the small programs the namespaces run,
// chosen by VEIL_NETNS_ROLE: so nothing but the binary and iproute2 needs
// to be in the namespaces.
func TestMain(m *testing.M) {
	switch os.Getenv("VEIL_NETNS_ROLE") {
	case "":
		os.Exit(m.Run())
	case "echo":
		roleEcho()
	case "http":
		roleHTTP()
	case "probe":
		roleProbe()
	case "dns":
		roleDNS()
	case "pay":
		rolePay()
	}
	os.Exit(0)
}

// roleEcho serves HTTP on port 80 answering with the caller's address.
func roleEcho() {
	ln, err := net.Listen("tcp", ":80")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		io.WriteString(w, host)
	}))
}

// roleHTTP makes one request: METHOD URL [TOKEN [BODY]] from the
// arguments after "--", and prints the body; exit 1 on failure.
func roleHTTP() {
	args := os.Args[len(os.Args)-4:]
	method, url, token, body := args[0], args[1], args[2], args[3]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if token != "-" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	b, _ := io.ReadAll(resp.Body)
	os.Stdout.Write(b)
	if resp.StatusCode/100 != 2 {
		fmt.Fprintln(os.Stderr, resp.Status)
		os.Exit(1)
	}
}

// roleProbe tries TCP, UDP, ICMP and DNS towards each target address (the
// arguments after "--"), and a DNS lookup through the system resolver.
// Every attempt may fail; what matters is what reaches the wire.
func roleProbe() {
	var targets []string
	for i, a := range os.Args {
		if a == "--" {
			targets = os.Args[i+1:]
		}
	}
	dnsQuery := []byte{0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 0, 1, 0, 1}
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Go(func() {
			for _, port := range []string{"80", "53"} {
				if c, err := net.DialTimeout("tcp", net.JoinHostPort(t, port), 300*time.Millisecond); err == nil {
					c.Close()
				}
			}
		})
		wg.Go(func() {
			for _, port := range []string{"53", "9999"} {
				if c, err := net.Dial("udp", net.JoinHostPort(t, port)); err == nil {
					c.Write(dnsQuery)
					c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
					c.Read(make([]byte, 512))
					c.Close()
				}
			}
		})
		wg.Go(func() { ping(t) })
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	net.DefaultResolver.LookupHost(ctx, "leak-check.example")
}

func ping(target string) {
	ip := net.ParseIP(target)
	network, typ := "ip4:icmp", icmp.Type(ipv4.ICMPTypeEcho)
	if ip.To4() == nil {
		network, typ = "ip6:ipv6-icmp", ipv6.ICMPTypeEchoRequest
	}
	c, err := icmp.ListenPacket(network, "")
	if err != nil {
		return
	}
	defer c.Close()
	msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: 7, Seq: 1, Data: bytes.Repeat([]byte("v"), 8)}}
	b, _ := msg.Marshal(nil)
	c.WriteTo(b, &net.IPAddr{IP: ip})
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	c.ReadFrom(make([]byte, 512))
}
