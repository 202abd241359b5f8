package gateway

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"

	"veil/internal/apitypes"
	"veil/internal/wg"
)

// BenchmarkApplyPeerMap measures taking a full peer map of N devices, as
// the control plane's JSON, into an empty gateway's authorised set, then a
// one-device delta at N.
func BenchmarkApplyPeerMap(b *testing.B) {
	for _, n := range []int{1000, 100_000} {
		peers := make([]apitypes.Peer, n)
		for i := range peers {
			var k wg.Key
			rand.Read(k[:])
			peers[i] = apitypes.Peer{PublicKey: k.Base64(), AllowedIPs: []string{
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
				if err := g.applyMap(apitypes.PeerMap{Version: 1, Full: true, Peers: peers}); err != nil {
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
			if err := g.applyMap(apitypes.PeerMap{Version: 1, Full: true, Peers: peers}); err != nil {
				b.Fatal(err)
			}
			v := int64(1)
			for b.Loop() {
				v++
				k, _ := wg.GenerateKey()
				p := apitypes.Peer{PublicKey: k.Public().Base64(), AllowedIPs: []string{"10.127.255.254/32"}}
				if err := g.applyMap(apitypes.PeerMap{Version: v, Peers: []apitypes.Peer{p}}); err != nil {
					b.Fatal(err)
				}
				v++
				if err := g.applyMap(apitypes.PeerMap{Version: v, Removed: []string{p.PublicKey}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// applyMap applies m as the control plane sends it, JSON on the wire.
func (g *Gateway) applyMap(m apitypes.PeerMap) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return g.applyStream(json.NewDecoder(bytes.NewReader(b)))
}
