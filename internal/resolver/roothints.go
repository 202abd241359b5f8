package resolver

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"veil/internal/config"

	"github.com/miekg/dns"
)

// ianaRootHints is the A and AAAA part of IANA's named.root.
const ianaRootHints = `
.                        3600000      NS    A.ROOT-SERVERS.NET.
A.ROOT-SERVERS.NET.      3600000      A     198.41.0.4
A.ROOT-SERVERS.NET.      3600000      AAAA  2001:503:ba3e::2:30
B.ROOT-SERVERS.NET.      3600000      A     170.247.170.2
B.ROOT-SERVERS.NET.      3600000      AAAA  2801:1b8:10::b
C.ROOT-SERVERS.NET.      3600000      A     192.33.4.12
C.ROOT-SERVERS.NET.      3600000      AAAA  2001:500:2::c
D.ROOT-SERVERS.NET.      3600000      A     199.7.91.13
D.ROOT-SERVERS.NET.      3600000      AAAA  2001:500:2d::d
E.ROOT-SERVERS.NET.      3600000      A     192.203.230.10
E.ROOT-SERVERS.NET.      3600000      AAAA  2001:500:a8::e
F.ROOT-SERVERS.NET.      3600000      A     192.5.5.241
F.ROOT-SERVERS.NET.      3600000      AAAA  2001:500:2f::f
G.ROOT-SERVERS.NET.      3600000      A     192.112.36.4
G.ROOT-SERVERS.NET.      3600000      AAAA  2001:500:12::d0d
H.ROOT-SERVERS.NET.      3600000      A     198.97.190.53
H.ROOT-SERVERS.NET.      3600000      AAAA  2001:500:1::53
I.ROOT-SERVERS.NET.      3600000      A     192.36.148.17
I.ROOT-SERVERS.NET.      3600000      AAAA  2001:7fe::53
J.ROOT-SERVERS.NET.      3600000      A     192.58.128.30
J.ROOT-SERVERS.NET.      3600000      AAAA  2001:503:c27::2:30
K.ROOT-SERVERS.NET.      3600000      A     193.0.14.129
K.ROOT-SERVERS.NET.      3600000      AAAA  2001:7fd::1
L.ROOT-SERVERS.NET.      3600000      A     199.7.83.42
L.ROOT-SERVERS.NET.      3600000      AAAA  2001:500:9f::42
M.ROOT-SERVERS.NET.      3600000      A     202.12.27.33
M.ROOT-SERVERS.NET.      3600000      AAAA  2001:dc3::35
`

// loadRootHints reads the root servers' addresses from a named.root file,
// or from the built-in copy when path is empty. IPv4 addresses come first.
func loadRootHints(path string) ([]netip.Addr, error) {
	var src io.Reader = strings.NewReader(ianaRootHints)
	if path != "" {
		f, err := config.OpenFile(path, config.MaxTextFile)
		if err != nil {
			return nil, fmt.Errorf("reading root hints: %w", err)
		}
		defer f.Close()
		src = f
	}
	var v4, v6 []netip.Addr
	zp := dns.NewZoneParser(src, ".", path)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		switch rr := rr.(type) {
		case *dns.A:
			if a, ok := netip.AddrFromSlice(rr.A); ok {
				v4 = append(v4, a.Unmap())
			}
		case *dns.AAAA:
			if a, ok := netip.AddrFromSlice(rr.AAAA); ok {
				v6 = append(v6, a)
			}
		}
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("parsing root hints: %w", err)
	}
	if len(v4)+len(v6) == 0 {
		return nil, fmt.Errorf("parsing root hints: no addresses")
	}
	return append(v4, v6...), nil
}
