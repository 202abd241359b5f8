package resolver

import (
	"context"
	"errors"
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
	resp.AuthenticatedData = false
	q := req.Question[0]
	var ede *dns.EDNS0_EDE
	switch opt := req.IsEdns0(); {
	case opt != nil && opt.Version() != 0:
		// RFC 6891 section 6.1.3: only version 0 is spoken.
		resp.Rcode = dns.RcodeBadVers
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
		var written bool
		if written, ede = r.answerClient(w, req, resp, client); written {
			return
		}
	}
	reply(w, req, resp, ede)
}

// answerClient fills resp for a regular query, applying the client's
// blocklists to the name and to every CNAME target on the way, and
// returns the extended error to send with it, if any. It reports true
// when it has already written the reply itself: a fresh cache hit, sent
// from the entry's packed form.
//
// DNSSEC (RFC 4035 section 3.2): the signatures and denial records go
// to clients that set DO; AD is set on secure answers for clients that
// set DO or AD; bogus answers are SERVFAIL with the reason as an RFC 8914
// extended error, unless the client set CD, which gets the data as
// received and validates it itself.
func (r *Resolver) answerClient(w dns.ResponseWriter, req, resp *dns.Msg, client netip.Addr) (bool, *dns.EDNS0_EDE) {
	q := req.Question[0]
	name := dns.CanonicalName(q.Name)
	var mask uint64
	if len(r.blocks.names) > 0 {
		mask = r.blockMask(w, client)
	}
	if r.blocks.blocked(name, mask) {
		resp.Rcode = dns.RcodeNameError
		return false, blockedEDE
	}
	if !r.noWire {
		_, tcp := w.RemoteAddr().(*net.TCPAddr)
		if r.writeCached(w, req, name, mask, tcp) {
			return true, nil
		}
	}
	m := r.cachedAnswer(name, q.Qtype, false) // the hot path: no context, no timer
	if m == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 4*r.timeout)
		defer cancel()
		var err error
		if m, err = r.resolve(ctx, name, q.Qtype); err != nil {
			var b *bogusError
			if !errors.As(err, &b) {
				resp.Rcode = dns.RcodeServerFailure
				return false, nil
			}
			if !req.CheckingDisabled || b.msg == nil {
				resp.Rcode = dns.RcodeServerFailure
				return false, &dns.EDNS0_EDE{InfoCode: b.code}
			}
			m = b.msg.Copy() // shared with other askers of the same name
		}
	}
	if mask != 0 {
		for _, rr := range m.Answer {
			if c, ok := rr.(*dns.CNAME); ok && r.blocks.blocked(dns.CanonicalName(c.Target), mask) {
				resp.Rcode = dns.RcodeNameError
				return false, blockedEDE
			}
		}
	}
	resp.Rcode = m.Rcode
	resp.Answer, resp.Ns = m.Answer, m.Ns
	opt := req.IsEdns0()
	do := opt != nil && opt.Do()
	if !do {
		resp.Answer, resp.Ns = withoutDNSSEC(resp.Answer, q.Qtype), withoutDNSSEC(resp.Ns, q.Qtype)
	}
	resp.AuthenticatedData = m.AuthenticatedData && (do || req.AuthenticatedData)
	// Clients asked with their case; answers use it back (RFC 4343).
	for _, rr := range resp.Answer {
		if h := rr.Header(); h.Name == name {
			h.Name = q.Name
		}
	}
	return false, nil
}

// blockedEDE is the extended error of a name a blocklist answers.
var blockedEDE = &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeBlocked}

// isDNSSEC reports whether t is a type only DNSSEC-aware clients get
// unasked.
func isDNSSEC(t uint16) bool {
	return t == dns.TypeRRSIG || t == dns.TypeNSEC || t == dns.TypeNSEC3
}

// withoutDNSSEC returns rrs without the RRSIG, NSEC and NSEC3 records
// a client that did not set DO must not get (unless it asked for that
// type), sharing rrs when there are none.
func withoutDNSSEC(rrs []dns.RR, qtype uint16) []dns.RR {
	keep := func(rr dns.RR) bool { t := rr.Header().Rrtype; return !isDNSSEC(t) || t == qtype }
	for i, rr := range rrs {
		if !keep(rr) {
			out := append([]dns.RR(nil), rrs[:i]...)
			for _, rr := range rrs[i+1:] {
				if keep(rr) {
					out = append(out, rr)
				}
			}
			return out
		}
	}
	return rrs
}

// reply writes resp sized for the transport: EDNS0 clients get up to
// EDNSBufferSize over UDP, others 512 bytes, with TC set if cut. EDNS0
// clients get their DO bit back (RFC 3225) and ede, if any.
func reply(w dns.ResponseWriter, req, resp *dns.Msg, ede *dns.EDNS0_EDE) {
	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		size = max(dns.MinMsgSize, min(int(opt.UDPSize()), EDNSBufferSize))
		resp.SetEdns0(EDNSBufferSize, opt.Do())
		if ede != nil {
			resp.IsEdns0().Option = append(resp.IsEdns0().Option, ede)
		}
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
