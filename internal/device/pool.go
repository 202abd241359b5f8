// Package device maps devices to their tunnel addresses and checks what a
// client sends when it registers one.
//
// Every device gets one index; its IPv4 and IPv6 addresses are that index
// added to the bases of the two pools, so a unique index gives two unique
// addresses and the store has one number to allocate. Index 1 is the
// gateways' own tunnel address, where their resolver answers.
package device

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"strings"
	"unicode"

	"veil/internal/wg"
)

// GatewayIndex is the host index of the gateways' own tunnel address.
const GatewayIndex = 1

// Pools are the tunnel address pools.
type Pools struct {
	V4, V6 netip.Prefix
}

// ParsePools parses the two pool CIDRs.
func ParsePools(v4, v6 string) (Pools, error) {
	p4, err := netip.ParsePrefix(v4)
	if err != nil || !p4.Addr().Is4() {
		return Pools{}, fmt.Errorf("ipv4 pool %q is not an IPv4 CIDR", v4)
	}
	p6, err := netip.ParsePrefix(v6)
	if err != nil || !p6.Addr().Is6() {
		return Pools{}, fmt.Errorf("ipv6 pool %q is not an IPv6 CIDR", v6)
	}
	return Pools{V4: p4.Masked(), V6: p6.Masked()}, nil
}

// MinIndex is the first index given to a device.
func (p Pools) MinIndex() int64 { return GatewayIndex + 1 }

// MaxIndex is the last index given to a device: the smaller pool's last
// host before the IPv4 broadcast address.
func (p Pools) MaxIndex() int64 {
	hosts4 := int64(1)<<(32-p.V4.Bits()) - 2 // minus the broadcast address
	bits6 := 128 - p.V6.Bits()
	if bits6 < 62 {
		if h6 := int64(1)<<bits6 - 1; h6 < hosts4 {
			return h6
		}
	}
	return hosts4
}

// Addrs returns the IPv4 and IPv6 addresses of index i.
func (p Pools) Addrs(i int64) (netip.Addr, netip.Addr) {
	return add(p.V4.Addr(), i), add(p.V6.Addr(), i)
}

// AllowedIPs returns the /32 and /128 prefixes of index i, as a gateway
// puts them in a peer's allowed IPs.
func (p Pools) AllowedIPs(i int64) (netip.Prefix, netip.Prefix) {
	a4, a6 := p.Addrs(i)
	return netip.PrefixFrom(a4, 32), netip.PrefixFrom(a6, 128)
}

// Gateway returns the gateways' tunnel addresses with the pools' prefix
// lengths, as a gateway configures its interface.
func (p Pools) Gateway() (netip.Prefix, netip.Prefix) {
	a4, a6 := p.Addrs(GatewayIndex)
	return netip.PrefixFrom(a4, p.V4.Bits()), netip.PrefixFrom(a6, p.V6.Bits())
}

func add(base netip.Addr, i int64) netip.Addr {
	n := new(big.Int).SetBytes(base.AsSlice())
	n.Add(n, big.NewInt(i))
	b := n.Bytes()
	out := make([]byte, base.BitLen()/8)
	copy(out[len(out)-len(b):], b)
	a, _ := netip.AddrFromSlice(out)
	return a
}

// Errors for bad registrations, written for the person who sent them.
var (
	ErrBadKey  = errors.New("public_key must be a WireGuard public key: 32 bytes in base64")
	ErrBadName = errors.New("name must be 1 to 64 printable characters")
)

// ParsePublicKey checks a WireGuard public key in base64 and returns it in
// canonical form.
func ParsePublicKey(s string) (string, error) {
	if len(s) != 44 { // before decoding: a huge body costs nothing
		return "", ErrBadKey
	}
	k, err := wg.ParseKey(s)
	if err != nil || k.IsZero() {
		return "", ErrBadKey
	}
	return k.Base64(), nil
}

// CleanName trims a device name and checks it; an empty name becomes def.
func CleanName(s, def string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		s = def
	}
	if len([]rune(s)) > 64 {
		return "", ErrBadName
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return "", ErrBadName
		}
	}
	return s, nil
}
