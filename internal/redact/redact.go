// Package redact gives addresses and names types whose log form
// hides them, so that a careless log line cannot break the no-logs promise
// (P1, P2, P3). Wrap a value before it goes near a logger:
//
//	log.Debug("query refused", "client", redact.Addr(ip), "name", redact.Name(q))
package redact

import (
	"log/slog"
	"net/netip"
)

// Addr is an IP address that logs as its family only.
type Addr netip.Addr

// LogValue implements slog.LogValuer.
func (a Addr) LogValue() slog.Value {
	ip := netip.Addr(a)
	switch {
	case !ip.IsValid():
		return slog.StringValue("invalid")
	case ip.Is4() || ip.Is4In6():
		return slog.StringValue("ipv4:redacted")
	default:
		return slog.StringValue("ipv6:redacted")
	}
}

// String hides the address in fmt output too.
func (a Addr) String() string { return a.LogValue().String() }

// Name is a DNS name or a destination host: it logs as a fixed marker.
type Name string

// LogValue implements slog.LogValuer.
func (Name) LogValue() slog.Value { return slog.StringValue("name:redacted") }

// String hides the name in fmt output too.
func (n Name) String() string { return n.LogValue().String() }
