// Command socksrelay lets a program that cannot speak SOCKS5 (iperf3) use
// Veil's proxy mode: it listens on a local TCP address and carries every
// connection through the SOCKS5 proxy to one fixed target. TCP only.
//
// Usage: socksrelay -listen 127.0.0.1:15201 -socks 127.0.0.1:1080 -to HOST:PORT
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"

	"golang.org/x/net/proxy"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:15201", "local TCP address to accept on")
	socks := flag.String("socks", "127.0.0.1:1080", "SOCKS5 proxy")
	to := flag.String("to", "", "HOST:PORT every connection is carried to")
	flag.Parse()
	if *to == "" {
		fmt.Fprintln(os.Stderr, "socksrelay: -to is required")
		os.Exit(2)
	}
	dialer, err := proxy.SOCKS5("tcp", *socks, nil, proxy.Direct)
	if err != nil {
		fmt.Fprintln(os.Stderr, "socksrelay:", err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "socksrelay:", err)
		os.Exit(1)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "socksrelay:", err)
			os.Exit(1)
		}
		go relay(c, dialer, *to)
	}
}

// relay copies both ways until each side has finished, passing half
// closes on so that iperf3's end-of-test exchange works.
func relay(c net.Conn, d proxy.Dialer, to string) {
	defer c.Close()
	u, err := d.Dial("tcp", to)
	if err != nil {
		fmt.Fprintln(os.Stderr, "socksrelay: dial through proxy:", err)
		return
	}
	defer u.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if tc, ok := dst.(interface{ CloseWrite() error }); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(u, c)
	go pipe(c, u)
	<-done
	<-done
}
