package resolver

import (
	"encoding/binary"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// wireAnswer is a cached answer packed once, the way reply would pack it
// for a client, so that a cache hit only copies bytes and patches the ID,
// the RD, CD and AD flags, the client's letter case and the aged TTLs.
type wireAnswer struct {
	b    []byte   // header, question and records, uncompressed, ID 0, no OPT
	ttls []uint32 // TTL of each record as stored
	offs []uint16 // offset of each record's TTL field in b
	// owners are the offsets of the answers' owner names that are the
	// question name, which the client gets back in its own case.
	owners []int
	// secure is the entry's validation result: AD for clients that ask.
	secure bool
}

// wireForms are the packed forms of one cached answer: plain for clients
// without DO (no RRSIG, NSEC or NSEC3), dnssec for those with it. Either
// is nil when the answer cannot be served from it.
type wireForms struct{ plain, dnssec *wireAnswer }

// optRR is the OPT record reply adds for EDNS0 clients: root owner,
// type OPT, UDP size EDNSBufferSize, no extended flags, no options; the
// DO bit (optDO of byte optFlags) is the client's.
var optRR = [11]byte{0, 0, byte(dns.TypeOPT), EDNSBufferSize >> 8, EDNSBufferSize & 0xff}

const (
	optFlags = 7
	optDO    = 0x80
)

// packWires packs m in both forms.
func packWires(m *dns.Msg) *wireForms {
	q := m.Question[0].Qtype
	plain := &dns.Msg{MsgHdr: m.MsgHdr, Question: m.Question, Answer: withoutDNSSEC(m.Answer, q), Ns: withoutDNSSEC(m.Ns, q)}
	w := &wireForms{plain: packWire(plain), dnssec: packWire(m)}
	if w.plain == nil && w.dnssec == nil {
		return nil
	}
	return w
}

// packWire packs m (a cleaned answer with a canonical question) for the
// fast path, or returns nil when m is not one it can serve.
func packWire(m *dns.Msg) *wireAnswer {
	if len(m.Question) != 1 || len(m.Extra) > 0 || m.Rcode > 0xf {
		return nil
	}
	resp := &dns.Msg{Question: m.Question, Answer: m.Answer, Ns: m.Ns}
	resp.Response = true
	resp.RecursionAvailable = true
	resp.Rcode = m.Rcode
	b, err := resp.Pack()
	if err != nil || len(b) > dns.MaxMsgSize-len(optRR) {
		return nil
	}
	w := &wireAnswer{b: b, secure: m.AuthenticatedData}
	off, ok := skipName(b, 12)
	if !ok {
		return nil
	}
	off += 4
	for i, rrs := 0, len(m.Answer)+len(m.Ns); i < rrs; i++ {
		start := off
		if off, ok = skipName(b, off); !ok || off+10 > len(b) {
			return nil
		}
		if i < len(m.Answer) && m.Answer[i].Header().Name == m.Question[0].Name {
			w.owners = append(w.owners, start)
		}
		w.offs = append(w.offs, uint16(off+4))
		w.ttls = append(w.ttls, binary.BigEndian.Uint32(b[off+4:]))
		off += 10 + int(binary.BigEndian.Uint16(b[off+8:]))
	}
	if off != len(b) {
		return nil
	}
	return w
}

// skipName returns the offset after the uncompressed name at off.
func skipName(b []byte, off int) (int, bool) {
	for off < len(b) {
		l := int(b[off])
		switch {
		case l == 0:
			return off + 1, true
		case l&0xc0 != 0: // a pointer: not expected without compression
			return 0, false
		}
		off += l + 1
	}
	return 0, false
}

var wireBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// hitQuery is what answering a query from a cached entry's packed form
// needs of the query.
type hitQuery struct {
	id         uint16
	rd, cd, ad bool   // the client's RD, CD and AD bits
	edns, do   bool   // EDNS0 (version 0) and its DO bit
	udpSize    uint16 // the client's EDNS0 payload size
	tcp        bool
	qname      []byte // the question name in wire form, in the client's case
	qtype      uint16
	name       string // the question name, canonical
	mask       uint64 // the client's blocklist categories
}

// writeCached answers req from a fresh cached entry, byte for byte what
// reply would send for it, and reports whether it did. It declines (and
// the caller takes the general path) for stale entries, names written
// with escapes, and answers too big for the client.
func (r *Resolver) writeCached(w dns.ResponseWriter, req *dns.Msg, name string, mask uint64, tcp bool) bool {
	q := req.Question[0]
	if len(q.Name) != len(name) || strings.IndexByte(q.Name, '\\') >= 0 || len(name) > 255 {
		return false
	}
	edns := req.IsEdns0()
	if edns != nil && edns.Version() != 0 {
		return false // the general path answers BADVERS
	}
	// The question name in wire form, in the client's case (no escapes,
	// so one byte a character).
	var qwire [256]byte
	n := 0
	if q.Name != "." {
		for l := range strings.SplitSeq(strings.TrimSuffix(q.Name, "."), ".") {
			if len(l) == 0 || len(l) > 63 {
				return false
			}
			qwire[n] = byte(len(l))
			n += 1 + copy(qwire[n+1:], l)
		}
	}
	qwire[n] = 0
	h := hitQuery{
		id: req.Id, rd: req.RecursionDesired, cd: req.CheckingDisabled, ad: req.AuthenticatedData,
		edns: edns != nil, tcp: tcp, qname: qwire[:n+1], qtype: q.Qtype, name: name, mask: mask,
	}
	if edns != nil {
		h.do, h.udpSize = edns.Do(), edns.UDPSize()
	}
	e := r.cache.get(cacheKey{name: name, qtype: q.Qtype, kind: kindAnswer})
	bp := wireBufs.Get().(*[]byte)
	defer wireBufs.Put(bp)
	b, ok := r.appendCached((*bp)[:0], e, &h)
	if !ok {
		return false
	}
	*bp = b
	_, _ = w.Write(b)
	return true
}

// appendCached appends to dst the reply to h from e, a cached answer
// entry (nil if there is none), and reports whether it could: e must be
// fresh, have a packed form for the client, and fit its size limit.
func (r *Resolver) appendCached(dst []byte, e *cacheEntry, h *hitQuery) ([]byte, bool) {
	if e == nil || e.wire == nil {
		return dst, false
	}
	wa := e.wire.plain
	if h.do {
		wa = e.wire.dnssec
	}
	if wa == nil {
		return dst, false
	}
	now := r.now()
	if !now.Before(e.expires) {
		return dst, false
	}
	if h.mask != 0 {
		for _, rr := range e.msg.Answer {
			if c, ok := rr.(*dns.CNAME); ok && r.blocks.blocked(dns.CanonicalName(c.Target), h.mask) {
				return dst, false // the general path answers NXDOMAIN
			}
		}
	}
	size := dns.MinMsgSize
	if h.edns {
		size = max(dns.MinMsgSize, min(int(h.udpSize), EDNSBufferSize))
	}
	if h.tcp {
		size = dns.MaxMsgSize
	}
	n := len(wa.b)
	if h.edns {
		n += len(optRR)
	}
	if n > size {
		return dst, false // needs compression or truncation
	}
	// The entry's question is the client's, but for the letter case.
	if len(wa.b) < 12+len(h.qname) {
		return dst, false
	}
	start := len(dst)
	dst = append(dst, wa.b...)
	b := dst[start:]
	binary.BigEndian.PutUint16(b, h.id)
	if h.rd {
		b[2] |= 1 // RD
	}
	if h.cd {
		b[3] |= 1 << 4 // CD
	}
	if wa.secure && (h.do || h.ad) {
		b[3] |= 1 << 5 // AD
	}
	// The client's case, and the same for answers owned by the question name.
	copy(b[12:], h.qname)
	for _, o := range wa.owners {
		copy(b[o:], h.qname)
	}
	age := uint32(now.Sub(e.stored) / time.Second)
	for i, o := range wa.offs {
		ttl := wa.ttls[i]
		if ttl > age {
			ttl -= age
		} else {
			ttl = 0
		}
		binary.BigEndian.PutUint32(b[o:], ttl)
	}
	if h.edns {
		opt := len(dst)
		dst = append(dst, optRR[:]...)
		if h.do {
			dst[opt+optFlags] |= optDO
		}
		binary.BigEndian.PutUint16(dst[start+10:], 1) // ARCOUNT
	}
	return dst, true
}
