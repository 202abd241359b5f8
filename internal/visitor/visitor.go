// Package visitor decides who the visitor of a request is, for every
// throttle, quota and tool of the site: the connection's peer, or, when
// that peer is a trusted reverse proxy, the client that proxy names in
// X-Forwarded-For. It also shares costly work out among visitors (Slots),
// so that no single visitor can take a tool from everyone else.
//
// The address is only ever used in memory: throttles count it by a keyed
// hash (package throttle), and nothing here keeps or logs it (promise P1).
package visitor

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver finds the visitor of a request. It is configured once, from
// the trusted proxies, and passed to everything that needs to know who is
// asking. A nil *Resolver trusts no proxy: the peer is the visitor.
type Resolver struct {
	trusted []netip.Prefix
}

// New returns a Resolver that believes the X-Forwarded-For header of the
// peers in trusted (the reverse proxies in front of the site) and of
// nobody else.
func New(trusted []netip.Prefix) *Resolver {
	v := &Resolver{}
	for _, p := range trusted {
		// Peers are compared unmapped, so a prefix written in the
		// IPv4-mapped form ("::ffff:10.0.0.0/104") means its IPv4 range.
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		v.trusted = append(v.trusted, p.Masked())
	}
	return v
}

// ErrNoPeer is returned when the request's peer address cannot be read
// (a listener that is not TCP).
var ErrNoPeer = errors.New("the connection has no IP peer address")

// Peer is the request's TCP peer, unmapped, and whether it is a trusted
// proxy.
func (v *Resolver) Peer(r *http.Request) (peer netip.AddrPort, proxy bool, err error) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.AddrPort{}, false, fmt.Errorf("%w: %w", ErrNoPeer, err)
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
	return ap, v.Trusted(ap.Addr()), nil
}

// Trusted reports whether a is one of the trusted proxies.
func (v *Resolver) Trusted(a netip.Addr) bool {
	if v == nil {
		return false
	}
	a = a.Unmap()
	for _, p := range v.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Addr is the visitor's address: the peer's, or, when the peer is a
// trusted proxy, the rightmost hop of X-Forwarded-For that is not itself
// a trusted proxy. Hops left of that one were written by the visitor and
// are not believed. A hop that does not parse stops the walk at the
// nearest address vouched for, so a malformed header cannot make the
// visitor whoever it likes.
func (v *Resolver) Addr(r *http.Request) (netip.Addr, error) {
	peer, proxy, err := v.Peer(r)
	if err != nil {
		return netip.Addr{}, err
	}
	ip := peer.Addr()
	if !proxy {
		return ip, nil
	}
	vals := r.Header.Values("X-Forwarded-For")
	for i := len(vals) - 1; i >= 0; i-- {
		rest := vals[i]
		for rest != "" {
			var hop string
			if j := strings.LastIndexByte(rest, ','); j >= 0 {
				hop, rest = rest[j+1:], rest[:j]
			} else {
				hop, rest = rest, ""
			}
			hop = strings.TrimSpace(hop)
			if hop == "" {
				continue // "a,,b" and a trailing comma: nothing written there
			}
			a, ok := parseHop(hop)
			if !ok {
				return ip, nil
			}
			ip = a
			if !v.Trusted(ip) {
				return ip, nil
			}
		}
	}
	return ip, nil
}

// parseHop reads one X-Forwarded-For entry: an address, or an address
// with a port as some proxies write it ("192.0.2.1:5000",
// "[2001:db8::1]:5000").
func parseHop(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone(""), true
}

// Key is what a throttle counts r's visitor by: Addr, or, when the peer
// address cannot be read, one key shared by every such visitor.
func (v *Resolver) Key(r *http.Request) netip.Addr {
	a, err := v.Addr(r)
	if err != nil {
		return netip.IPv6Unspecified()
	}
	return a
}

// Secure reports whether the visitor reached Veil over HTTPS: the
// connection is TLS, or a trusted proxy says it terminated TLS in
// X-Forwarded-Proto. Anyone else's X-Forwarded-Proto is not believed.
func (v *Resolver) Secure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	_, proxy, err := v.Peer(r)
	return err == nil && proxy && r.Header.Get("X-Forwarded-Proto") == "https"
}
