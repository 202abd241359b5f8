package resolver

import (
	"context"
	"net"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Batched UDP. A cache hit costs a few hundred nanoseconds; reading its
// query and writing its answer cost two system calls, and, once the
// socket is empty, the netpoller's park and wake-up. Under load, queries
// wait in the socket's buffer, so ServePacket reads up to batchSize of
// them with one recvmmsg(2) and sends the hits' answers with one
// sendmmsg(2) (golang.org/x/net; one datagram per call where the system
// has neither). At low load a read returns the one datagram there is, at
// no extra wait.

const (
	// batchSize is how many datagrams one read takes at most.
	batchSize = 32
	// batchBuf is the size of a batch's read buffers. A DNS query over UDP
	// is one question and an OPT record, a few hundred bytes; a datagram
	// that fills the buffer may have been cut short and is dropped.
	batchBuf = 4096
)

// batchConn reads and writes several datagrams per system call:
// ipv4.PacketConn or ipv6.PacketConn, whose Message types are one.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// serveBatches is ServePacket's loop over a UDP socket.
func (r *Resolver) serveBatches(ctx context.Context, uc *net.UDPConn) error {
	var bc batchConn = ipv6.NewPacketConn(uc)
	if la, ok := uc.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() != nil {
		bc = ipv4.NewPacketConn(uc)
	}
	in := make([]ipv4.Message, batchSize)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, batchBuf)}
	}
	out := make([]ipv4.Message, batchSize)
	answers := make([][]byte, batchSize)
	for i := range answers {
		answers[i] = make([]byte, 0, 512)
		out[i].Buffers = make([][]byte, 1)
	}
	var name []byte
	for {
		n, err := bc.ReadBatch(in, 0)
		if err != nil {
			if done, err := readEnd(ctx, err); done {
				return err
			}
			continue
		}
		k := 0
		for _, m := range in[:n] {
			from, ok := m.Addr.(*net.UDPAddr)
			if !ok || m.N >= batchBuf {
				continue
			}
			var reply bool
			answers[k], name, reply = r.datagram(answers[k][:0], name, m.Buffers[0][:m.N], from.AddrPort().Addr().Unmap(), uc, from)
			if reply {
				out[k].Buffers[0], out[k].Addr = answers[k], from
				k++
			}
		}
		for sent := 0; sent < k; {
			n, err := bc.WriteBatch(out[sent:k], 0)
			if err != nil {
				break // the client retries; the socket is read on
			}
			sent += n
		}
		for i := range in[:n] {
			in[i].Addr = nil // for the GC: the address is the reply's only
		}
	}
}
