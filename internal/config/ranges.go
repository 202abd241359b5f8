package config

import (
	"fmt"
	"net/netip"
	"net/url"

	"veil/internal/netguard"
)

// minBitsV4 and minBitsV6 are the broadest ranges egress_allow and
// trusted_proxies take without allow_broad_ranges: a broader one opens (or
// trusts) a large part of the internet, more often a slip than a wish.
const minBitsV4, minBitsV6 = 8, 32

// checkBroad refuses a range broader than minBitsV4 or minBitsV6 unless
// allowBroad.
func checkBroad(p netip.Prefix, allowBroad bool) error {
	bits, min := p.Bits(), minBitsV6
	switch {
	case p.Addr().Is4():
		min = minBitsV4
	case p.Addr().Is4In6() && bits >= 96:
		bits, min = bits-96, minBitsV4
	}
	if bits < min && !allowBroad {
		return fmt.Errorf("%s is broader than /%d; set allow_broad_ranges = true (--allow-broad-ranges) if that is meant", p, min)
	}
	return nil
}

// checkEgress checks one egress_allow range. An IPv6 range inside an
// IPv4-embedding range (::ffff:0:0/96, 64:ff9b::/96, …) would do nothing:
// the guard judges its addresses as the IPv4 addresses they hold.
func checkEgress(p netip.Prefix, allowBroad bool) error {
	if err := checkBroad(p, allowBroad); err != nil {
		return err
	}
	if a := p.Addr(); p.Bits() == 128 && (a == netip.IPv6Unspecified() || a == netip.IPv6Loopback()) {
		return nil
	}
	for _, e := range netguard.EmbeddingRanges() {
		if e.Bits() <= p.Bits() && e.Contains(p.Addr()) {
			return fmt.Errorf("%s lies in %s, whose addresses the egress guard judges as the IPv4 addresses they hold: allow the IPv4 range instead", p, e)
		}
	}
	return nil
}

// notPool lists what a tunnel pool may not overlap: a device address there
// would be this host, its link, a group, or not an address at all.
var notPool = []struct {
	prefix netip.Prefix
	what   string
}{
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("0.0.0.0/8"), `"this network"`},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved and broadcast"},
	{netip.MustParsePrefix("::/96"), "loopback, unspecified and IPv4-compatible"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// checkPool refuses a tunnel pool that overlaps a range of notPool or an
// IPv4-embedding one.
func checkPool(p netip.Prefix) error {
	for _, n := range notPool {
		if n.prefix.Overlaps(p) {
			return fmt.Errorf("%s overlaps %s (%s)", p, n.prefix, n.what)
		}
	}
	for _, e := range netguard.EmbeddingRanges() {
		if e.Overlaps(p) {
			return fmt.Errorf("%s overlaps %s, whose addresses stand for IPv4 ones", p, e)
		}
	}
	return nil
}

// httpURL reports whether s is an absolute http or https URL with a host.
func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// stunURL reports whether s is a STUN URI (RFC 7064), stun:host[:port] or
// stuns:host[:port].
func stunURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "stun" || u.Scheme == "stuns") && u.Opaque != "" && u.RawQuery == ""
}
