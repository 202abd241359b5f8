package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// ipv4ICMPHeaders is what an echo request of a given IP size carries
// besides its data: the IPv4 header (no options) and the ICMP header.
const ipv4ICMPHeaders = 20 + 8

// pingSizes sends echo requests of the given IP sizes to gw out of the
// interface dev, with DF set and the kernel's cached path MTU ignored
// (IP_PMTUDISC_PROBE), and returns the largest size answered. The raw
// socket needs the root that tun mode has.
func pingSizes(ctx context.Context, dev string, gw netip.Addr, sizes []int) (int, error) {
	if len(sizes) == 0 {
		return 0, nil
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = errors.Join(
				unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, dev),
				unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE))
		})
		return errors.Join(err, serr)
	}}
	pc, err := lc.ListenPacket(ctx, "ip4:icmp", "0.0.0.0")
	if err != nil {
		return 0, fmt.Errorf("opening the probe socket: %w", err)
	}
	defer pc.Close()
	id := os.Getpid() & 0xffff
	to := &net.IPAddr{IP: gw.AsSlice()}
	largest := sizes[0]
	for _, s := range sizes {
		largest = max(largest, s)
	}
	answered := map[int]bool{}
	send := func() {
		for _, s := range sizes {
			if answered[s] {
				continue
			}
			msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: s, Data: make([]byte, s-ipv4ICMPHeaders)}}
			b, err := msg.Marshal(nil)
			if err == nil {
				pc.WriteTo(b, to) // a size the link refuses fails here: unanswered
			}
		}
	}
	start := time.Now()
	send()
	resent := false
	buf := make([]byte, 65536)
	for !answered[largest] {
		now := time.Now()
		if now.Sub(start) >= probeWait || ctx.Err() != nil {
			break
		}
		if !resent && now.Sub(start) >= probeResend {
			send()
			resent = true
		}
		next := start.Add(probeWait)
		if !resent {
			next = start.Add(probeResend)
		}
		pc.SetReadDeadline(next)
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			return 0, fmt.Errorf("reading probe replies: %w", err)
		}
		m, err := icmp.ParseMessage(1, buf[:n])
		if err != nil || m.Type != ipv4.ICMPTypeEchoReply {
			continue
		}
		e, ok := m.Body.(*icmp.Echo)
		ip, _ := from.(*net.IPAddr)
		if !ok || e.ID != id || ip == nil || !ip.IP.Equal(to.IP) || len(e.Data)+ipv4ICMPHeaders != e.Seq {
			continue
		}
		answered[e.Seq] = true
	}
	best := 0
	for s := range answered {
		best = max(best, s)
	}
	return best, ctx.Err()
}

// setLinkMTU sets the MTU of the interface dev; wireguard-go's TUN learns
// it from the kernel's link event.
func setLinkMTU(dev string, mtu int) error {
	link, err := netlink.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("finding %s: %w", dev, err)
	}
	if err := netlink.LinkSetMTU(link, mtu); err != nil {
		return fmt.Errorf("setting the MTU of %s: %w", dev, err)
	}
	return nil
}
