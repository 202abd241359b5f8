package wg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"

	"golang.zx2c4.com/wireguard/tun"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// nicID is the netstack's only interface.
const nicID = 1

// NetstackConfig configures NewNetstack.
type NetstackConfig struct {
	// Addresses are the stack's own tunnel addresses.
	Addresses []netip.Addr
	// MTU is the tunnel MTU; zero means DefaultMTU.
	MTU int
	// Promiscuous makes the stack accept packets for any destination and
	// answer from any source, as a gateway forwarding its peers' flows
	// needs; Stack then gives the gVisor stack to install forwarders on.
	Promiscuous bool
	// AllowLoopback lets loopback addresses (127.0.0.0/8, ::1) cross the
	// tunnel, which the stack drops by default as martians. A promiscuous
	// stack always allows them and leaves the decision to its forwarders'
	// egress guard; in-process tests of a client need it to reach test
	// servers on loopback through a gateway.
	AllowLoopback bool
	// Echo, if set, receives the ICMP echo requests addressed to anything
	// but the stack's own addresses, instead of the stack answering them
	// itself (which would fake every ping). It is called on the packet
	// path and must not block; answer with ReplyEcho.
	Echo func(Echo)
}

// Echo is an ICMP or ICMPv6 echo request read from the tunnel.
type Echo struct {
	Src, Dst netip.Addr
	ID, Seq  uint16
	Data     []byte
}

// Netstack is a userspace TCP/IP stack (gVisor) presented to wireguard-go
// as a TUN device. It follows wireguard-go's tun/netstack, adding access to
// the stack itself (for a gateway's forwarders) and echo interception.
type Netstack struct {
	ep       *channel.Endpoint
	stack    *stack.Stack
	notify   *channel.NotificationHandle
	events   chan tun.Event
	incoming chan *stack.PacketBuffer
	done     chan struct{}
	closing  sync.Once
	mtu      int
	echo     func(Echo)

	mu    sync.RWMutex
	local map[netip.Addr]bool // own addresses

	route4, route6 bool
}

var _ tun.Device = (*Netstack)(nil)

// NewNetstack creates the stack.
func NewNetstack(cfg NetstackConfig) (*Netstack, error) {
	mtu := cfg.MTU
	if mtu == 0 {
		mtu = DefaultMTU
	}
	// A gateway's forwarders hand every destination to the egress guard,
	// which refuses loopback unless the operator allows it; the stack
	// must not drop it first.
	loop := cfg.Promiscuous || cfg.AllowLoopback
	v4 := ipv4.NewProtocolWithOptions(ipv4.Options{AllowExternalLoopbackTraffic: loop})
	v6 := ipv6.NewProtocolWithOptions(ipv6.Options{AllowExternalLoopbackTraffic: loop})
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{v4, v6},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
		// With HandleLocal, a promiscuous stack would take every peer
		// address for its own and loop replies back to itself.
		HandleLocal: !cfg.Promiscuous,
	})
	n := &Netstack{
		ep:       channel.New(1024, uint32(mtu), ""),
		stack:    s,
		events:   make(chan tun.Event, 10),
		incoming: make(chan *stack.PacketBuffer, 1024),
		done:     make(chan struct{}),
		mtu:      mtu,
		local:    make(map[netip.Addr]bool),
		echo:     cfg.Echo,
	}
	sack := tcpip.TCPSACKEnabled(true)
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack); err != nil {
		return nil, fmt.Errorf("netstack: enabling TCP SACK: %v", err)
	}
	// gVisor's RACK loss detection cost 11.5% of a proxy-mode client's
	// CPU in bench/tunnel; Tailscale's netstack turns it off for the same
	// reason. Larger buffers let one stream fill the tunnel.
	rack := tcpip.TCPRecovery(0)
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &rack); err != nil {
		return nil, fmt.Errorf("netstack: turning RACK off: %v", err)
	}
	rx := tcpip.TCPReceiveBufferSizeRangeOption{Min: tcp.MinBufferSize, Default: tcp.DefaultReceiveBufferSize, Max: 8 << 20}
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &rx); err != nil {
		return nil, fmt.Errorf("netstack: receive buffers: %v", err)
	}
	tx := tcpip.TCPSendBufferSizeRangeOption{Min: tcp.MinBufferSize, Default: tcp.DefaultSendBufferSize, Max: 6 << 20}
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &tx); err != nil {
		return nil, fmt.Errorf("netstack: send buffers: %v", err)
	}
	// gVisor's own segmentation offload: TCP hands the link whole runs of
	// segments at once, built in one loop, instead of one send each.
	n.ep.SupportedGSOKind = stack.GVisorGSOSupported
	n.notify = n.ep.AddNotify(n)
	if err := s.CreateNIC(nicID, n.ep); err != nil {
		return nil, fmt.Errorf("netstack: creating NIC: %v", err)
	}
	if cfg.Promiscuous {
		if err := s.SetPromiscuousMode(nicID, true); err != nil {
			return nil, fmt.Errorf("netstack: promiscuous mode: %v", err)
		}
		if err := s.SetSpoofing(nicID, true); err != nil {
			return nil, fmt.Errorf("netstack: spoofing: %v", err)
		}
	}
	if cfg.Promiscuous {
		n.addRoute(false)
		n.addRoute(true)
	}
	for _, ip := range cfg.Addresses {
		if err := n.AddAddress(ip); err != nil {
			return nil, err
		}
	}
	n.events <- tun.EventUp
	return n, nil
}

// AddAddress gives the stack one more address of its own.
func (n *Netstack) AddAddress(ip netip.Addr) error {
	ip = ip.Unmap()
	proto := ipv4.ProtocolNumber
	if ip.Is6() {
		proto = ipv6.ProtocolNumber
	}
	pa := tcpip.ProtocolAddress{
		Protocol:          proto,
		AddressWithPrefix: tcpip.AddrFromSlice(ip.AsSlice()).WithPrefix(),
	}
	if err := n.stack.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); err != nil {
		return fmt.Errorf("netstack: adding address: %v", err)
	}
	n.mu.Lock()
	n.local[ip] = true
	n.mu.Unlock()
	n.addRoute(ip.Is6())
	return nil
}

// addRoute sends everything of one family out through the tunnel, once.
func (n *Netstack) addRoute(v6 bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if v6 && !n.route6 {
		n.stack.AddRoute(tcpip.Route{Destination: header.IPv6EmptySubnet, NIC: nicID})
		n.route6 = true
	} else if !v6 && !n.route4 {
		n.stack.AddRoute(tcpip.Route{Destination: header.IPv4EmptySubnet, NIC: nicID})
		n.route4 = true
	}
}

func (n *Netstack) isLocal(ip netip.Addr) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.local[ip]
}

// Stack returns the gVisor stack, for installing forwarders.
func (n *Netstack) Stack() *stack.Stack { return n.stack }

// Name implements tun.Device.
func (n *Netstack) Name() (string, error) { return "netstack", nil }

// File implements tun.Device; a netstack has no file.
func (n *Netstack) File() *os.File { return nil }

// Events implements tun.Device.
func (n *Netstack) Events() <-chan tun.Event { return n.events }

// MTU implements tun.Device.
func (n *Netstack) MTU() (int, error) { return n.mtu, nil }

// readBatch is how many packets Read hands wireguard-go at once.
const readBatch = 128

// BatchSize implements tun.Device.
func (n *Netstack) BatchSize() int { return readBatch }

// Read implements tun.Device: it gives wireguard-go the packets the stack
// sends, waiting for the first and taking whatever else is queued, up to
// len(bufs).
func (n *Netstack) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	var pkt *stack.PacketBuffer
	select {
	case pkt = <-n.incoming:
	case <-n.done:
		return 0, os.ErrClosed
	}
	i := 0
	for {
		// A packet larger than the buffer (the stack makes none at this
		// MTU) is dropped: an error would stop wireguard-go's reader, and
		// with it the device.
		if c, ok := copyPacket(bufs[i][offset:], pkt); ok {
			sizes[i] = c
			i++
		}
		pkt.DecRef()
		if i == len(bufs) {
			return i, nil
		}
		select {
		case pkt = <-n.incoming:
		default:
			return i, nil
		}
	}
}

// copyPacket copies the whole of pkt, headers and payload, into dst, if
// it fits.
func copyPacket(dst []byte, pkt *stack.PacketBuffer) (int, bool) {
	if pkt.Size() > len(dst) {
		return 0, false
	}
	c := 0
	for _, s := range pkt.AsSlices() {
		c += copy(dst[c:], s)
	}
	return c, true
}

// Write implements tun.Device: it gives the stack packets from the tunnel.
func (n *Netstack) Write(bufs [][]byte, offset int) (int, error) {
	for _, b := range bufs {
		pkt := b[offset:]
		if len(pkt) == 0 {
			continue
		}
		var proto tcpip.NetworkProtocolNumber
		switch pkt[0] >> 4 {
		case 4:
			proto = header.IPv4ProtocolNumber
		case 6:
			proto = header.IPv6ProtocolNumber
		default:
			return 0, syscall.EAFNOSUPPORT
		}
		if n.echo != nil && n.interceptEcho(pkt) {
			continue
		}
		pkb := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(pkt)})
		n.ep.InjectInbound(proto, pkb)
		pkb.DecRef()
	}
	return len(bufs), nil
}

// WriteNotify is called by the channel endpoint when the stack has a
// packet to send.
func (n *Netstack) WriteNotify() {
	pkt := n.ep.Read()
	if pkt == nil {
		return
	}
	n.queue(pkt)
}

// queue hands pkt, and the reference to it, to Read.
func (n *Netstack) queue(pkt *stack.PacketBuffer) {
	select {
	case n.incoming <- pkt:
	case <-n.done:
		pkt.DecRef()
	}
}

// Close implements tun.Device.
func (n *Netstack) Close() error {
	n.closing.Do(func() {
		close(n.done)
		n.stack.RemoveNIC(nicID)
		n.stack.Close()
		n.ep.RemoveNotify(n.notify)
		n.ep.Close()
		close(n.events)
		for {
			select {
			case pkt := <-n.incoming:
				pkt.DecRef()
			default:
				return
			}
		}
	})
	return nil
}

// DialContext connects through the stack. The address must hold an IP
// literal: names are for the caller to resolve (through the tunnel).
// Networks: tcp, tcp4, tcp6, udp, udp4, udp6.
func (n *Netstack) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return nil, fmt.Errorf("netstack dial: %w", err)
	}
	fa, proto := fullAddr(ap)
	switch network {
	case "tcp", "tcp4", "tcp6":
		return gonet.DialContextTCP(ctx, n.stack, fa, proto)
	case "udp", "udp4", "udp6":
		return gonet.DialUDP(n.stack, nil, &fa, proto)
	}
	return nil, fmt.Errorf("netstack dial: unsupported network %q", network)
}

// ListenTCP listens on the stack.
func (n *Netstack) ListenTCP(ap netip.AddrPort) (*gonet.TCPListener, error) {
	fa, proto := fullAddr(ap)
	return gonet.ListenTCP(n.stack, fa, proto)
}

// ListenUDP listens on the stack.
func (n *Netstack) ListenUDP(ap netip.AddrPort) (*gonet.UDPConn, error) {
	fa, proto := fullAddr(ap)
	return gonet.DialUDP(n.stack, &fa, nil, proto)
}

func fullAddr(ap netip.AddrPort) (tcpip.FullAddress, tcpip.NetworkProtocolNumber) {
	proto := ipv4.ProtocolNumber
	if ap.Addr().Is6() && !ap.Addr().Is4In6() {
		proto = ipv6.ProtocolNumber
	}
	fa := tcpip.FullAddress{NIC: nicID, Port: ap.Port()}
	if ap.Addr().IsValid() && !ap.Addr().IsUnspecified() {
		fa.Addr = tcpip.AddrFromSlice(ap.Addr().Unmap().AsSlice())
	}
	return fa, proto
}

// ErrClosed is returned when the stack has been closed.
var ErrClosed = errors.New("netstack closed")

// interceptEcho hands an echo request for a foreign destination to the
// Echo hook and reports whether it did.
func (n *Netstack) interceptEcho(pkt []byte) bool {
	switch pkt[0] >> 4 {
	case 4:
		ip := header.IPv4(pkt)
		if !ip.IsValid(len(pkt)) || ip.TransportProtocol() != header.ICMPv4ProtocolNumber ||
			ip.More() || ip.FragmentOffset() != 0 {
			return false
		}
		ic := header.ICMPv4(ip.Payload())
		if len(ic) < header.ICMPv4MinimumSize || ic.Type() != header.ICMPv4Echo || ic.Code() != 0 {
			return false
		}
		src, _ := netip.AddrFromSlice(ip.SourceAddressSlice())
		dst, _ := netip.AddrFromSlice(ip.DestinationAddressSlice())
		if n.isLocal(dst) {
			return false
		}
		n.echo(Echo{Src: src, Dst: dst, ID: ic.Ident(), Seq: ic.Sequence(),
			Data: append([]byte(nil), ic[header.ICMPv4MinimumSize:]...)})
		return true
	case 6:
		ip := header.IPv6(pkt)
		if !ip.IsValid(len(pkt)) || ip.TransportProtocol() != header.ICMPv6ProtocolNumber {
			return false
		}
		ic := header.ICMPv6(ip.Payload())
		if len(ic) < header.ICMPv6EchoMinimumSize || ic.Type() != header.ICMPv6EchoRequest || ic.Code() != 0 {
			return false
		}
		src, _ := netip.AddrFromSlice(ip.SourceAddressSlice())
		dst, _ := netip.AddrFromSlice(ip.DestinationAddressSlice())
		if n.isLocal(dst) || !dst.IsGlobalUnicast() {
			// Link-local and multicast (neighbour discovery's peers)
			// stay with the stack.
			return false
		}
		n.echo(Echo{Src: src, Dst: dst, ID: ic.Ident(), Seq: ic.Sequence(),
			Data: append([]byte(nil), ic[header.ICMPv6EchoMinimumSize:]...)})
		return true
	}
	return false
}

// ReplyEcho sends the echo reply to req into the tunnel, from req.Dst.
func (n *Netstack) ReplyEcho(req Echo) {
	var pkt []byte
	if req.Src.Is4() {
		pkt = make([]byte, header.IPv4MinimumSize+header.ICMPv4MinimumSize+len(req.Data))
		ic := header.ICMPv4(pkt[header.IPv4MinimumSize:])
		ic.SetType(header.ICMPv4EchoReply)
		ic.SetIdent(req.ID)
		ic.SetSequence(req.Seq)
		copy(ic[header.ICMPv4MinimumSize:], req.Data)
		ic.SetChecksum(^checksum.Checksum(ic, 0))
		ip := header.IPv4(pkt)
		ip.Encode(&header.IPv4Fields{
			TotalLength: uint16(len(pkt)),
			TTL:         64,
			Protocol:    uint8(header.ICMPv4ProtocolNumber),
			SrcAddr:     tcpip.AddrFrom4(req.Dst.As4()),
			DstAddr:     tcpip.AddrFrom4(req.Src.As4()),
		})
		ip.SetChecksum(^ip.CalculateChecksum())
	} else {
		pkt = make([]byte, header.IPv6MinimumSize+header.ICMPv6EchoMinimumSize+len(req.Data))
		ic := header.ICMPv6(pkt[header.IPv6MinimumSize:])
		ic.SetType(header.ICMPv6EchoReply)
		ic.SetIdent(req.ID)
		ic.SetSequence(req.Seq)
		copy(ic[header.ICMPv6EchoMinimumSize:], req.Data)
		src, dst := tcpip.AddrFrom16(req.Dst.As16()), tcpip.AddrFrom16(req.Src.As16())
		ic.SetChecksum(header.ICMPv6Checksum(header.ICMPv6ChecksumParams{Header: ic, Src: src, Dst: dst}))
		header.IPv6(pkt).Encode(&header.IPv6Fields{
			PayloadLength:     uint16(len(ic)),
			TransportProtocol: header.ICMPv6ProtocolNumber,
			HopLimit:          64,
			SrcAddr:           src,
			DstAddr:           dst,
		})
	}
	n.queue(stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(pkt)}))
}
