package gateway

import (
	"bytes"
	"testing"

	"github.com/google/nftables/expr"
)

// TestMSSClamp checks the clamp's expressions against what
// `nft add rule inet t mss iifname X tcp flags syn tcp option maxseg size
// set rt mtu` compiles to: the SYN test, the route's TCP MSS in network
// order, and a write of two bytes at offset 2 of TCP option 2.
func TestMSSClamp(t *testing.T) {
	rules := mssClamp("veil0")
	if len(rules) != 2 {
		t.Fatalf("%d rules, want one per direction", len(rules))
	}
	for i, key := range []expr.MetaKey{expr.MetaKeyIIFNAME, expr.MetaKeyOIFNAME} {
		e := rules[i]
		if m, ok := e[0].(*expr.Meta); !ok || m.Key != key {
			t.Errorf("rule %d starts with %#v, want meta %v", i, e[0], key)
		}
		if c, ok := e[1].(*expr.Cmp); !ok || !bytes.Equal(c.Data, ifnameBytes("veil0")) {
			t.Errorf("rule %d: interface match %#v", i, e[1])
		}
		var sawSYN, sawRt, sawOrder bool
		for j, x := range e {
			switch x := x.(type) {
			case *expr.Bitwise:
				sawSYN = bytes.Equal(x.Mask, []byte{0x02})
			case *expr.Rt:
				sawRt = x.Key == expr.RtTCPMSS && x.Register == 1
			case *expr.Byteorder:
				sawOrder = sawRt && x.Op == expr.ByteorderHton && x.Len == 2 && x.Size == 2
			case *expr.Exthdr:
				if j != len(e)-1 {
					t.Errorf("rule %d: the write is not last", i)
				}
				if x.Op != expr.ExthdrOpTcpopt || x.Type != 2 || x.Offset != 2 || x.Len != 2 || x.SourceRegister != 1 || x.DestRegister != 0 {
					t.Errorf("rule %d: exthdr %#v, want a write of tcp option maxseg size", i, x)
				}
			}
		}
		if !sawSYN || !sawRt || !sawOrder {
			t.Errorf("rule %d: syn test %v, rt tcpmss %v, hton %v", i, sawSYN, sawRt, sawOrder)
		}
	}
}
