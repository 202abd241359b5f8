package resolver

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
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
	if uc, ok := pc.(*net.UDPConn); ok {
		return r.serveBatches(ctx, uc)
	}
	// Other packet conns (a gateway's netstack) are read one datagram at
	// a time.
	return r.serveEach(ctx, pc)
}

// serveEach is ServePacket's loop reading one datagram at a time.
func (r *Resolver) serveEach(ctx context.Context, pc net.PacketConn) error {
	buf := make([]byte, dns.MaxMsgSize)
	out := make([]byte, 0, dns.MaxMsgSize)
	var name []byte
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if done, err := readEnd(ctx, err); done {
				return err
			}
			continue
		}
		ap, ok := addrPort(from)
		if !ok {
			continue
		}
		var reply bool
		if out, name, reply = r.datagram(out[:0], name, buf[:n], ap, pc); reply {
			_, _ = pc.WriteTo(out, from)
		}
	}
}

// readEnd tells apart a read error that ends ServePacket (it returns
// true, with nil when ctx is done) from a timeout to read past.
func readEnd(ctx context.Context, err error) (bool, error) {
	if ctx.Err() != nil {
		return true, nil
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false, nil
	}
	return true, err
}

// datagram handles the datagram q, which arrived on pc from from: a cache
// hit's answer is appended to out, with reply true, for the caller to
// send; anything else that is a well-formed query from an allowed source
// is answered by the general path, which sends its own reply; the rest is
// dropped. name is scratch space, returned for reuse.
func (r *Resolver) datagram(out, name, q []byte, from netip.AddrPort, pc net.PacketConn) ([]byte, []byte, bool) {
	client := from.Addr().Unmap()
	if len(q) < 12 || !r.allow(client) {
		return out, name, false
	}
	dh := dns.Header{
		Id:      binary.BigEndian.Uint16(q),
		Bits:    binary.BigEndian.Uint16(q[2:]),
		Qdcount: binary.BigEndian.Uint16(q[4:]),
		Ancount: binary.BigEndian.Uint16(q[6:]),
		Nscount: binary.BigEndian.Uint16(q[8:]),
		Arcount: binary.BigEndian.Uint16(q[10:]),
	}
	if r.AcceptMsg(dh) != dns.MsgAccept {
		return out, name, false
	}
	// The hot path: a cache hit answered from the query's bytes.
	var ok bool
	if out, name, ok = r.answerHit(out, name, q, client); ok {
		return out, name, len(out) > 0 // empty: over the rate limit
	}
	req := new(dns.Msg)
	if err := req.Unpack(q); err != nil {
		return out, name, false
	}
	w := &packetWriter{pc: pc, to: net.UDPAddrFromAddrPort(from)}
	if r.needsUpstream(req) {
		r.serveMiss(w, req)
	} else {
		r.ServeDNS(w, req)
	}
	return out, name, false
}

// missJob is a query for a miss worker.
type missJob struct {
	w   dns.ResponseWriter
	req *dns.Msg
}

// missIdle is how long a miss worker waits for another query.
const missIdle = 10 * time.Second

// serveMiss answers req in another goroutine: an idle miss worker if
// there is one, else a new one. Workers are reused, rather than a
// goroutine started per query, because a query that recurses grows its
// goroutine's stack several times (copying it each time); a worker's
// stack stays grown. There are as many workers as misses in flight at
// the peak, and each ends after missIdle without work.
func (r *Resolver) serveMiss(w dns.ResponseWriter, req *dns.Msg) {
	select {
	case r.misses <- missJob{w, req}:
		return
	default:
	}
	go func() {
		idle := time.NewTimer(missIdle)
		defer idle.Stop()
		for {
			r.ServeDNS(w, req)
			idle.Reset(missIdle)
			select {
			case j := <-r.misses:
				w, req = j.w, j.req
			case <-idle.C:
				return
			}
		}
	}()
}

// addrPort returns a's address and port.
func addrPort(a net.Addr) (netip.AddrPort, bool) {
	if u, ok := a.(*net.UDPAddr); ok {
		return u.AddrPort(), true
	}
	ap, err := netip.ParseAddrPort(a.String())
	return ap, err == nil
}

// answerHit appends to out the answer to the query q (a datagram that
// AcceptMsg accepted, from client) when a fresh cache entry holds it,
// and reports whether it did; name is scratch space, returned for reuse.
// It reads the query's bytes without unpacking them into a dns.Msg and
// declines, for the general path to answer, anything not plain: a
// question name with characters that presentation format escapes,
// EDNS0 other than version 0 with no options but cookie or padding,
// other records, an opcode, class or type the general path treats
// specially, and blocked names. Its reply is byte for byte the general
// path's. The client's rate limit is taken only when it answers.
func (r *Resolver) answerHit(out, name, q []byte, client netip.Addr) ([]byte, []byte, bool) {
	h, name, ok := parseHitQuery(q, name[:0])
	if !ok || r.noWire {
		return out, name, false
	}
	if r.policy != nil && len(r.blocks.names) > 0 {
		if h.mask = r.blocks.mask(r.policy(client)); h.mask != 0 {
			h.name = string(name)
			if r.blocks.blocked(h.name, h.mask) {
				return out, name, false
			}
		}
	}
	out, ok = r.appendCached(out, r.cache.getBytes(name, h.qtype, kindAnswer), &h)
	if !ok {
		return out, name, false
	}
	if r.limiter != nil && !r.limiter.allow(client) {
		return out[:0], name, true // answered with silence, as ServeDNS does
	}
	return out, name, true
}

// parseHitQuery reads a plain query (see answerHit) and appends its
// question name, canonical, to name.
func parseHitQuery(q, name []byte) (hitQuery, []byte, bool) {
	var h hitQuery
	bits := binary.BigEndian.Uint16(q[2:])
	const qr, opcode, rd, ad, cd = 1 << 15, 0xf << 11, 1 << 8, 1 << 5, 1 << 4
	if bits&(qr|opcode) != 0 || binary.BigEndian.Uint16(q[4:]) != 1 ||
		binary.BigEndian.Uint16(q[6:]) != 0 || binary.BigEndian.Uint16(q[8:]) != 0 {
		return h, name, false
	}
	arcount := binary.BigEndian.Uint16(q[10:])
	if arcount > 1 {
		return h, name, false
	}
	h.id, h.rd, h.ad, h.cd = binary.BigEndian.Uint16(q), bits&rd != 0, bits&ad != 0, bits&cd != 0
	off := 12
	for {
		if off >= len(q) {
			return h, name, false
		}
		l := int(q[off])
		if l == 0 {
			break
		}
		if l > 63 || off+1+l >= len(q) {
			return h, name, false // a pointer, or past the end
		}
		for _, c := range q[off+1 : off+1+l] {
			switch {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
			case 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			default:
				return h, name, false // escaped in presentation format
			}
			name = append(name, c)
		}
		name = append(name, '.')
		off += 1 + l
	}
	if off-12 > 254 {
		return h, name, false
	}
	if len(name) == 0 {
		name = append(name, '.')
	}
	h.qname = q[12 : off+1]
	off++
	if off+4 > len(q) {
		return h, name, false
	}
	h.qtype = binary.BigEndian.Uint16(q[off:])
	if binary.BigEndian.Uint16(q[off+2:]) != dns.ClassINET {
		return h, name, false
	}
	switch h.qtype {
	case dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR, dns.TypeOPT, dns.TypeRRSIG:
		return h, name, false
	}
	off += 4
	if arcount == 1 {
		// OPT: root owner, type, payload size, extended RCODE, version,
		// flags, options.
		if off+11 > len(q) || q[off] != 0 || binary.BigEndian.Uint16(q[off+1:]) != dns.TypeOPT || q[off+6] != 0 {
			return h, name, false
		}
		h.edns, h.udpSize = true, binary.BigEndian.Uint16(q[off+3:])
		h.do = q[off+7]&optDO != 0
		rdlen := int(binary.BigEndian.Uint16(q[off+9:]))
		off += 11
		if off+rdlen != len(q) {
			return h, name, false
		}
		for o := off; o < len(q); {
			if o+4 > len(q) {
				return h, name, false
			}
			code, l := binary.BigEndian.Uint16(q[o:]), int(binary.BigEndian.Uint16(q[o+2:]))
			if (code != dns.EDNS0COOKIE && code != dns.EDNS0PADDING) || o+4+l > len(q) {
				return h, name, false
			}
			o += 4 + l
		}
		off = len(q)
	}
	if off != len(q) {
		return h, name, false
	}
	return h, name, true
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
