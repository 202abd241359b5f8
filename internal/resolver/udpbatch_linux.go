package resolver

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Batched UDP. A cache hit costs a few hundred nanoseconds; reading its
// query and writing its answer cost two system calls, and, once the
// socket is empty, the netpoller's park and wake-up. Under load, queries
// wait in the socket's buffer, so ServePacket reads up to batchSize of
// them with one recvmmsg(2) and sends the hits' answers with one
// sendmmsg(2). At low load a read returns the one datagram there is, at
// no extra wait. The calls are made here rather than through
// golang.org/x/net's ReadBatch, which allocates a net.UDPAddr for every
// datagram: a garbage collection every few seconds under load, whose
// marking of a large cache delays the answers waiting behind it. Here a
// client's address is read from the kernel's sockaddr in place, and a
// hit's answer goes back to that same sockaddr.

const (
	// batchSize is how many datagrams one read takes at most.
	batchSize = 32
	// batchBuf is the size of a batch's read buffers. A DNS query over UDP
	// is one question and an OPT record, a few hundred bytes; a datagram
	// that fills the buffer may have been cut short and is dropped.
	batchBuf = 4096
)

// mmsghdr is the kernel's struct mmsghdr: a message and its length.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

// serveBatches is ServePacket's loop over a UDP socket.
func (r *Resolver) serveBatches(ctx context.Context, uc *net.UDPConn) error {
	rc, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	recv, send := newMmsgCall(rc, unix.SYS_RECVMMSG), newMmsgCall(rc, unix.SYS_SENDMMSG)
	var (
		in      [batchSize]mmsghdr
		inIov   [batchSize]unix.Iovec
		names   [batchSize]unix.RawSockaddrInet6 // room for either family
		bufs    [batchSize][]byte
		out     [batchSize]mmsghdr
		outIov  [batchSize]unix.Iovec
		answers [batchSize][]byte
		name    []byte
	)
	for i := range batchSize {
		bufs[i] = make([]byte, batchBuf)
		inIov[i].Base = &bufs[i][0]
		inIov[i].SetLen(batchBuf)
		in[i].hdr.Iov = &inIov[i]
		in[i].hdr.SetIovlen(1)
		in[i].hdr.Name = (*byte)(unsafe.Pointer(&names[i]))
		answers[i] = make([]byte, 0, 512)
		out[i].hdr.Iov = &outIov[i]
		out[i].hdr.SetIovlen(1)
	}
	for {
		for i := range in {
			in[i].hdr.Namelen = unix.SizeofSockaddrInet6 // the kernel sets what it wrote
		}
		n, err := recv.do(in[:])
		if err != nil {
			if done, err := readEnd(ctx, err); done {
				return err
			}
			continue
		}
		k := 0
		for i := range in[:n] {
			size := int(in[i].len)
			from, ok := sockaddrAddrPort(&names[i], in[i].hdr.Namelen)
			if !ok || size >= batchBuf {
				continue
			}
			var reply bool
			answers[k], name, reply = r.datagram(answers[k][:0], name, bufs[i][:size], from, uc)
			if reply {
				out[k].hdr.Name, out[k].hdr.Namelen = in[i].hdr.Name, in[i].hdr.Namelen
				outIov[k].Base = &answers[k][0]
				outIov[k].SetLen(len(answers[k]))
				k++
			}
		}
		for sent := 0; sent < k; {
			n, err := send.do(out[sent:k])
			if err != nil || n == 0 {
				// The first answer could not go (a firewall's refusal, no
				// buffer space): it is dropped, its client retries, and
				// the rest go on.
				n = 1
			}
			sent += n
		}
	}
}

// mmsgCall is recvmmsg(2) or sendmmsg(2) on one socket, made through its
// RawConn so that the goroutine waits in the netpoller while the socket is
// not ready. Its function value is made once: a closure made per call
// would be an allocation per batch.
type mmsgCall struct {
	rc    syscall.RawConn
	trap  uintptr // unix.SYS_RECVMMSG or unix.SYS_SENDMMSG
	ms    []mmsghdr
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

func newMmsgCall(rc syscall.RawConn, trap uintptr) *mmsgCall {
	c := &mmsgCall{rc: rc, trap: trap}
	c.fn = c.try
	return c
}

// try makes the call once; false asks the netpoller to wait.
func (c *mmsgCall) try(fd uintptr) bool {
	r, _, e := unix.Syscall6(c.trap, fd, uintptr(unsafe.Pointer(&c.ms[0])), uintptr(len(c.ms)), 0, 0, 0)
	if e == unix.EAGAIN {
		return false
	}
	c.n, c.errno = int(r), e
	return true
}

// do reads or writes ms and returns how many messages it did.
func (c *mmsgCall) do(ms []mmsghdr) (int, error) {
	c.ms = ms
	var err error
	if c.trap == unix.SYS_RECVMMSG {
		err = c.rc.Read(c.fn)
	} else {
		err = c.rc.Write(c.fn)
	}
	c.ms = nil
	if err != nil {
		return 0, err
	}
	if c.errno != 0 {
		return 0, c.errno
	}
	return c.n, nil
}

// sockaddrAddrPort returns the address and port of sa, a sockaddr_in or
// sockaddr_in6 of n bytes as the kernel wrote it.
func sockaddrAddrPort(sa *unix.RawSockaddrInet6, n uint32) (netip.AddrPort, bool) {
	switch {
	case sa.Family == unix.AF_INET && n >= unix.SizeofSockaddrInet4:
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(s4.Addr), networkOrder(s4.Port)), true
	case sa.Family == unix.AF_INET6 && n >= unix.SizeofSockaddrInet6:
		a := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 {
			a = a.WithZone(strconv.FormatUint(uint64(sa.Scope_id), 10))
		}
		return netip.AddrPortFrom(a, networkOrder(sa.Port)), true
	}
	return netip.AddrPort{}, false
}

// networkOrder reads a sockaddr's port, stored in network byte order.
func networkOrder(p uint16) uint16 {
	return binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&p))[:])
}
