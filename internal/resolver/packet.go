package resolver

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"time"

	"github.com/miekg/dns"
)

// ServePacket answers UDP queries arriving on pc until ctx is done, then
// returns nil; it returns early only if reading from pc fails. It is an
// alternative to a miekg/dns server for UDP: queries the cache can answer
// are answered by the reading goroutine itself, with no goroutine started
// and no hand-off between threads, which is what keeps a busy machine's
// scheduler out of the hit path. Queries that need upstream servers get a
// goroutine each.
//
// The same rules as ServeDNS with PacketConn and AcceptMsg apply:
// datagrams from sources Config.Allow refuses, and anything that is not a
// well-formed query, are dropped without a reply. Replies go out with
// WriteTo, so pc should be bound to the address clients send to (a
// gateway's tunnel address), not a wildcard. Several goroutines may call
// ServePacket on one pc, or each on its own SO_REUSEPORT socket.
func (r *Resolver) ServePacket(ctx context.Context, pc net.PacketConn) error {
	stop := context.AfterFunc(ctx, func() { pc.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, dns.MaxMsgSize)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		if n < 12 {
			continue
		}
		if _, ok := r.allowed(from); !ok {
			continue
		}
		dh := dns.Header{
			Id:      binary.BigEndian.Uint16(buf),
			Bits:    binary.BigEndian.Uint16(buf[2:]),
			Qdcount: binary.BigEndian.Uint16(buf[4:]),
			Ancount: binary.BigEndian.Uint16(buf[6:]),
			Nscount: binary.BigEndian.Uint16(buf[8:]),
			Arcount: binary.BigEndian.Uint16(buf[10:]),
		}
		if r.AcceptMsg(dh) != dns.MsgAccept {
			continue
		}
		req := new(dns.Msg)
		if err := req.Unpack(buf[:n]); err != nil {
			continue
		}
		w := &packetWriter{pc: pc, to: from}
		if r.needsUpstream(req) {
			go r.ServeDNS(w, req)
		} else {
			r.ServeDNS(w, req)
		}
	}
}

// needsUpstream reports whether answering req may wait for upstream
// servers: a regular query whose answer is not fresh in the cache.
func (r *Resolver) needsUpstream(req *dns.Msg) bool {
	if req.Response || req.Opcode != dns.OpcodeQuery || len(req.Question) != 1 {
		return false
	}
	q := req.Question[0]
	switch {
	case q.Qclass != dns.ClassINET, q.Qtype == dns.TypeANY, q.Qtype == dns.TypeAXFR, q.Qtype == dns.TypeIXFR:
		return false
	}
	return !r.cache.fresh(cacheKey{name: dns.CanonicalName(q.Name), qtype: q.Qtype, kind: kindAnswer}, r.now())
}

// packetWriter is the dns.ResponseWriter of one datagram read by
// ServePacket.
type packetWriter struct {
	pc net.PacketConn
	to net.Addr
}

var _ dns.ResponseWriter = (*packetWriter)(nil)

// LocalAddr returns the socket's address.
func (w *packetWriter) LocalAddr() net.Addr { return w.pc.LocalAddr() }

// RemoteAddr returns the client's address.
func (w *packetWriter) RemoteAddr() net.Addr { return w.to }

// WriteMsg packs m and sends it to the client.
func (w *packetWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// Write sends b to the client.
func (w *packetWriter) Write(b []byte) (int, error) { return w.pc.WriteTo(b, w.to) }

// Close does nothing: the socket is shared by every client.
func (w *packetWriter) Close() error { return nil }

// TsigStatus reports no TSIG error: the resolver does not use TSIG.
func (w *packetWriter) TsigStatus() error { return nil }

// TsigTimersOnly does nothing: the resolver does not use TSIG.
func (w *packetWriter) TsigTimersOnly(bool) {}

// Hijack does nothing: there is no connection to take over.
func (w *packetWriter) Hijack() {}
