package resolver

import (
	"context"
	"net"
	"net/netip"

	"github.com/miekg/dns"

	"veil/internal/redact"
)

// anyTTL is the TTL of the RFC 8482 answer to ANY.
const anyTTL = 3600

// ServeDNS answers one client query. Queries from sources that
// Config.Allow refuses, and those beyond the client's rate limit, get no
// reply at all (on TCP the connection is closed), so the resolver can
// neither be used openly nor for reflection.
func (r *Resolver) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	client, ok := r.allowed(w.RemoteAddr())
	if !ok {
		r.log.Debug("dropped query from a source not allowed", "client", redact.Addr(client))
		w.Close()
		return
	}
	if r.limiter != nil && !r.limiter.allow(client) {
		r.log.Debug("dropped query over rate limit", "client", redact.Addr(client))
		return
	}
	if req == nil || req.Response || len(req.Question) != 1 {
		return
	}
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.RecursionAvailable = true
	resp.Authoritative = false
	q := req.Question[0]
	// Clients asked with their case; answers use it back (RFC 4343).
	switch {
	case req.Opcode != dns.OpcodeQuery:
		resp.Rcode = dns.RcodeNotImplemented
	case q.Qclass != dns.ClassINET:
		resp.Rcode = dns.RcodeRefused
	case q.Qtype == dns.TypeANY:
		// RFC 8482 section 4.2: one synthesised HINFO record.
		resp.Answer = []dns.RR{&dns.HINFO{
			Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeHINFO, Class: dns.ClassINET, Ttl: anyTTL},
			Cpu: "RFC8482",
		}}
	case q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR:
		resp.Rcode = dns.RcodeRefused
	default:
		if r.answerClient(w, req, resp, client) {
			return
		}
	}
	reply(w, req, resp)
}

// answerClient fills resp for a regular query, applying the client's
// blocklists to the name and to every CNAME target on the way. It reports
// true when it has already written the reply itself: a fresh cache hit,
// sent from the entry's packed form.
func (r *Resolver) answerClient(w dns.ResponseWriter, req, resp *dns.Msg, client netip.Addr) bool {
	q := req.Question[0]
	name := dns.CanonicalName(q.Name)
	var mask uint64
	if r.policy != nil && len(r.blocks.names) > 0 {
		mask = r.blocks.mask(r.policy(client))
	}
	if r.blocks.blocked(name, mask) {
		resp.Rcode = dns.RcodeNameError
		return false
	}
	if !r.noWire {
		_, tcp := w.RemoteAddr().(*net.TCPAddr)
		if r.writeCached(w, req, name, mask, tcp) {
			return true
		}
	}
	m := r.cachedAnswer(name, q.Qtype, false) // the hot path: no context, no timer
	if m == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 4*r.timeout)
		defer cancel()
		var err error
		if m, err = r.resolve(ctx, name, q.Qtype); err != nil {
			resp.Rcode = dns.RcodeServerFailure
			return false
		}
	}
	if mask != 0 {
		for _, rr := range m.Answer {
			if c, ok := rr.(*dns.CNAME); ok && r.blocks.blocked(dns.CanonicalName(c.Target), mask) {
				resp.Rcode = dns.RcodeNameError
				return false
			}
		}
	}
	resp.Rcode = m.Rcode
	resp.Answer = m.Answer
	resp.Ns = m.Ns
	if len(resp.Answer) > 0 && resp.Answer[0].Header().Name != q.Name &&
		dns.CanonicalName(resp.Answer[0].Header().Name) == name {
		resp.Answer[0].Header().Name = q.Name
	}
	return false
}

// reply writes resp sized for the transport: EDNS0 clients get up to
// EDNSBufferSize over UDP, others 512 bytes, with TC set if cut.
func reply(w dns.ResponseWriter, req, resp *dns.Msg) {
	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		size = max(dns.MinMsgSize, min(int(opt.UDPSize()), EDNSBufferSize))
		resp.SetEdns0(EDNSBufferSize, false)
	}
	if _, tcp := w.RemoteAddr().(*net.TCPAddr); tcp {
		size = dns.MaxMsgSize
	}
	// Most answers fit uncompressed; compress and cut only those that do not.
	b, err := resp.Pack()
	if err == nil && len(b) > size {
		resp.Compress = true
		resp.Truncate(size)
		b, err = resp.Pack()
	}
	if err != nil {
		return
	}
	_, _ = w.Write(b)
}
