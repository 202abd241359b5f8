package gateway

import (
	"net/netip"
	"slices"

	"veil/internal/apitypes"
	"veil/internal/wg"
)

// peerState is the gateway's picture of its peers, in RAM only.
type peerState struct {
	version int64
	peers   map[wg.Key][]netip.Prefix
	// block holds each peer's DNS blocking categories, and byAddr finds a
	// peer by tunnel address, so the resolver can apply them. Both are
	// configuration from the peer map, never activity.
	block  map[wg.Key][]string
	byAddr map[netip.Addr]wg.Key
	// leftOut counts the peers of the last full map that did not fit.
	leftOut int
}

// change is what one peer map asks of the device.
type change struct {
	set     []wg.Peer
	remove  []wg.Key
	block   map[wg.Key][]string // peers whose blocking categories changed
	invalid int                 // entries skipped: bad key, or no allowed IP inside a pool
}

// diff computes the single-peer changes that bring s to m. A full map
// becomes the additions, changes and removals against s, never a replace
// of every peer. Allowed IPs outside the tunnel pools are dropped, so a
// peer can never claim traffic for other destinations.
func (s *peerState) diff(m apitypes.PeerMap, pools []netip.Prefix) change {
	ch := change{block: make(map[wg.Key][]string)}
	seen := make(map[wg.Key]bool, len(m.Peers))
	for _, p := range m.Peers {
		key, err := wg.ParseKey(p.PublicKey)
		if err != nil {
			ch.invalid++
			continue
		}
		allowed := allowedIPs(p.AllowedIPs, pools)
		if len(allowed) == 0 {
			ch.invalid++
			continue
		}
		seen[key] = true
		if !slices.Equal(s.block[key], p.Block) {
			ch.block[key] = p.Block
		}
		if old, ok := s.peers[key]; ok && slices.Equal(old, allowed) {
			continue
		}
		ch.set = append(ch.set, wg.Peer{PublicKey: key, AllowedIPs: allowed})
	}
	if m.Full {
		for key := range s.peers {
			if !seen[key] {
				ch.remove = append(ch.remove, key)
			}
		}
		return ch
	}
	for _, r := range m.Removed {
		key, err := wg.ParseKey(r)
		if err != nil {
			ch.invalid++
			continue
		}
		if _, ok := s.peers[key]; ok && !seen[key] {
			ch.remove = append(ch.remove, key)
		}
	}
	return ch
}

// fit drops from ch the new peers that would take the device past max
// after its removals, and returns how many it dropped. Changes to peers
// already held always stay. Dropped peers are not recorded, so a later
// full map offers them again.
func (s *peerState) fit(ch *change, max int) int {
	room := max - len(s.peers)
	for _, k := range ch.remove {
		if _, ok := s.peers[k]; ok {
			room++
		}
	}
	kept, over := ch.set[:0], 0
	for _, p := range ch.set {
		if _, held := s.peers[p.PublicKey]; held {
			kept = append(kept, p)
			continue
		}
		if room <= 0 {
			over++
			delete(ch.block, p.PublicKey)
			continue
		}
		room--
		kept = append(kept, p)
	}
	ch.set = kept
	return over
}

// commit records ch, applied to the device, and the map's version.
func (s *peerState) commit(version int64, ch change) {
	if s.block == nil {
		s.block = make(map[wg.Key][]string)
		s.byAddr = make(map[netip.Addr]wg.Key)
	}
	for _, p := range ch.set {
		s.forget(p.PublicKey)
		s.peers[p.PublicKey] = p.AllowedIPs
		for _, a := range p.AllowedIPs {
			s.byAddr[a.Addr()] = p.PublicKey
		}
	}
	for k, b := range ch.block {
		if len(b) == 0 {
			delete(s.block, k)
		} else {
			s.block[k] = b
		}
	}
	for _, k := range ch.remove {
		s.forget(k)
		delete(s.peers, k)
		delete(s.block, k)
	}
	s.version = version
}

// forget drops k's addresses from the address index.
func (s *peerState) forget(k wg.Key) {
	for _, a := range s.peers[k] {
		if s.byAddr[a.Addr()] == k {
			delete(s.byAddr, a.Addr())
		}
	}
}

// blockFor returns the blocking categories of the peer holding addr.
func (s *peerState) blockFor(addr netip.Addr) []string {
	k, ok := s.byAddr[addr.Unmap()]
	if !ok {
		return nil
	}
	return s.block[k]
}

// allowedIPs parses the prefixes that lie inside a pool, sorted.
func allowedIPs(in []string, pools []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range in {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			continue
		}
		p = p.Masked()
		for _, pool := range pools {
			if pool.Bits() <= p.Bits() && pool.Contains(p.Addr()) {
				out = append(out, p)
				break
			}
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(out)
}

func samePrefixes(a, b []netip.Prefix) bool { return slices.Equal(a, b) }
