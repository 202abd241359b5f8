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

// writeCached answers req from a fresh cached entry, byte for byte what
// reply would send for it, and reports whether it did. It declines (and
// the caller takes the general path) for stale entries, names written
// with escapes, and answers too big for the client.
func (r *Resolver) writeCached(w dns.ResponseWriter, req *dns.Msg, name string, mask uint64, tcp bool) bool {
	q := req.Question[0]
	if len(q.Name) != len(name) || strings.IndexByte(q.Name, '\\') >= 0 {
		return false
	}
	e := r.cache.get(cacheKey{name: name, qtype: q.Qtype, kind: kindAnswer})
	if e == nil || e.wire == nil {
		return false
	}
	edns := req.IsEdns0()
	if edns != nil && edns.Version() != 0 {
		return false // the general path answers BADVERS
	}
	do := edns != nil && edns.Do()
	wa := e.wire.plain
	if do {
		wa = e.wire.dnssec
	}
	if wa == nil {
		return false
	}
	now := r.now()
	if !now.Before(e.expires) {
		return false
	}
	if mask != 0 {
		for _, rr := range e.msg.Answer {
			if c, ok := rr.(*dns.CNAME); ok && r.blocks.blocked(dns.CanonicalName(c.Target), mask) {
				return false // the general path answers NXDOMAIN
			}
		}
	}
	size := dns.MinMsgSize
	if edns != nil {
		size = max(dns.MinMsgSize, min(int(edns.UDPSize()), EDNSBufferSize))
	}
	if tcp {
		size = dns.MaxMsgSize
	}
	n := len(wa.b)
	if edns != nil {
		n += len(optRR)
	}
	if n > size {
		return false // needs compression or truncation
	}
	bp := wireBufs.Get().(*[]byte)
	defer wireBufs.Put(bp)
	b := append((*bp)[:0], wa.b...)
	binary.BigEndian.PutUint16(b, req.Id)
	if req.RecursionDesired {
		b[2] |= 1 // RD
	}
	if req.CheckingDisabled {
		b[3] |= 1 << 4 // CD
	}
	if wa.secure && (do || req.AuthenticatedData) {
		b[3] |= 1 << 5 // AD
	}
	// The client's case, label by label (no escapes, so one byte each).
	off, p := 12, 0
	for l := int(b[off]); l != 0; l = int(b[off]) {
		copy(b[off+1:off+1+l], q.Name[p:p+l])
		off += l + 1
		p += l + 1
	}
	for _, o := range wa.owners {
		copy(b[o:], b[12:off+1])
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
	if edns != nil {
		opt := len(b)
		b = append(b, optRR[:]...)
		if do {
			b[opt+optFlags] |= optDO
		}
		binary.BigEndian.PutUint16(b[10:], 1) // ARCOUNT
	}
	*bp = b
	_, _ = w.Write(b)
	return true
}
