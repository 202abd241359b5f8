// Command socksrelay lets a program that cannot speak SOCKS5 (iperf3) use
// Veil's proxy mode: it listens on a local TCP and UDP address and carries
// every TCP connection (SOCKS5 CONNECT) and every UDP flow (SOCKS5 UDP
// ASSOCIATE, one association per local sender) through the SOCKS5 proxy
// to one fixed target.
//
// Usage: socksrelay -listen 127.0.0.1:15201 -socks 127.0.0.1:1080 -to IP:PORT
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"

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
	target, err := netip.ParseAddrPort(*to)
	if err != nil {
		fmt.Fprintln(os.Stderr, "socksrelay: -to:", err)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "socksrelay:", err)
		os.Exit(1)
	}
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addrPort(ln.Addr())))
	if err != nil {
		fmt.Fprintln(os.Stderr, "socksrelay:", err)
		os.Exit(1)
	}
	go relayUDP(pc, *socks, target)
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

// relayUDP carries the datagrams that arrive on pc to target through a
// SOCKS5 UDP association, one per sender, and the answers back.
func relayUDP(pc *net.UDPConn, socks string, target netip.AddrPort) {
	var mu sync.Mutex
	type flow struct {
		ctl net.Conn // the association's TCP connection: kept, or it ends
		up  *net.UDPConn
	}
	flows := map[netip.AddrPort]flow{}
	// The datagram header: RSV, FRAG, then the target's type, address
	// and port.
	hdr := []byte{0, 0, 0, 1}
	if target.Addr().Is6() {
		hdr[3] = 4
	}
	hdr = binary.BigEndian.AppendUint16(append(hdr, target.Addr().AsSlice()...), target.Port())
	buf := make([]byte, 64<<10)
	copy(buf, hdr)
	for {
		n, src, err := pc.ReadFromUDPAddrPort(buf[len(hdr):])
		if err != nil {
			fmt.Fprintln(os.Stderr, "socksrelay:", err)
			os.Exit(1)
		}
		mu.Lock()
		f, ok := flows[src]
		mu.Unlock()
		up := f.up
		if !ok {
			ctl, c, err := associate(socks)
			if err != nil {
				fmt.Fprintln(os.Stderr, "socksrelay: UDP ASSOCIATE:", err)
				continue
			}
			up = c
			mu.Lock()
			flows[src] = flow{ctl, c}
			mu.Unlock()
			go func() {
				// Answers: drop the header (an IPv4 or IPv6 source
				// address) and pass the payload on.
				b := make([]byte, 64<<10)
				for {
					n, err := up.Read(b)
					if err != nil {
						return
					}
					skip := 4 + 4 + 2
					if n > 3 && b[3] == 4 {
						skip = 4 + 16 + 2
					}
					if n >= skip {
						pc.WriteToUDPAddrPort(b[skip:n], src)
					}
				}
			}()
		}
		up.Write(buf[:len(hdr)+n])
	}
}

// associate asks the SOCKS5 proxy for a UDP association and returns its
// TCP connection, which the association lasts as long as, and a socket
// connected to the relay port the proxy names.
func associate(socks string) (net.Conn, *net.UDPConn, error) {
	ctl, err := net.Dial("tcp", socks)
	if err != nil {
		return nil, nil, err
	}
	// No authentication; UDP ASSOCIATE, the sender's address not given.
	if _, err := ctl.Write([]byte{5, 1, 0, 5, 3, 0, 1, 0, 0, 0, 0, 0, 0}); err != nil {
		ctl.Close()
		return nil, nil, err
	}
	r := make([]byte, 2+4+4+2)
	if _, err := io.ReadFull(ctl, r); err != nil {
		ctl.Close()
		return nil, nil, err
	}
	if r[1] != 0 || r[3] != 0 || r[5] != 1 {
		ctl.Close()
		return nil, nil, fmt.Errorf("refused or not an IPv4 relay: % x", r)
	}
	ip, _ := netip.AddrFromSlice(r[6:10])
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, binary.BigEndian.Uint16(r[10:]))))
	if err != nil {
		ctl.Close()
		return nil, nil, err
	}
	return ctl, c, nil
}

func addrPort(a net.Addr) netip.AddrPort {
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
