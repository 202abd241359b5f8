package gateway

import (
	"fmt"
	"net/netip"
	"testing"

	"veil/internal/apitypes"
	"veil/internal/wg"
)

// BenchmarkApplyPeerMap measures applying a full peer map of N peers to an
// empty netstack device, then a one-peer delta to the full device.
func BenchmarkApplyPeerMap(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		peers := make([]apitypes.Peer, n)
		for i := range peers {
			k, err := wg.GenerateKey()
			if err != nil {
				b.Fatal(err)
			}
			peers[i] = apitypes.Peer{PublicKey: k.Public().Base64(), AllowedIPs: []string{
				netip.AddrFrom4([4]byte{10, 64 + byte(i>>16), byte(i >> 8), byte(i)}).String() + "/32",
			}}
		}
		newGW := func(b *testing.B) *Gateway {
			g, err := New(Config{ControlURL: "http://127.0.0.1:1", Token: "t"})
			if err != nil {
				b.Fatal(err)
			}
			g.tunnel = tunnelConfig{pools: []netip.Prefix{netip.MustParsePrefix("10.64.0.0/10")}}
			return g
		}
		b.Run(fmt.Sprintf("full/%d", n), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				g := newGW(b)
				b.StartTimer()
				if err := g.apply(apitypes.PeerMap{Version: 1, Full: true, Peers: peers}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				g.shutdown()
				b.StartTimer()
			}
		})
		b.Run(fmt.Sprintf("delta/%d", n), func(b *testing.B) {
			g := newGW(b)
			defer g.shutdown()
			if err := g.apply(apitypes.PeerMap{Version: 1, Full: true, Peers: peers}); err != nil {
				b.Fatal(err)
			}
			v := int64(1)
			for b.Loop() {
				v++
				k, _ := wg.GenerateKey()
				p := apitypes.Peer{PublicKey: k.Public().Base64(), AllowedIPs: []string{"10.127.255.254/32"}}
				if err := g.apply(apitypes.PeerMap{Version: v, Peers: []apitypes.Peer{p}}); err != nil {
					b.Fatal(err)
				}
				v++
				if err := g.apply(apitypes.PeerMap{Version: v, Removed: []string{p.PublicKey}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
