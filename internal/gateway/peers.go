package gateway

import (
	"net/netip"
	"slices"
	"time"

	"veil/internal/apitypes"
	"veil/internal/wg"
)

// peerState is the gateway's picture of its peers, in RAM only: the
// authorised set the peer map gives, and which of those the device holds
// now. A device is put on the WireGuard device by its first valid
// handshake (admit) and taken off when idle, so the device's memory and
// its 65,536-peer limit follow the active devices, not the authorised.
type peerState struct {
	version int64
	// peers is the authorised set: each device's allowed IPs.
	peers map[wg.Key][]netip.Prefix
	// block holds each peer's DNS blocking categories: configuration
	// from the peer map, never activity.
	block map[wg.Key][]string
	// active are the peers the device holds, with when each was put
	// there; byAddr finds an active peer by tunnel address, so the
	// resolver can apply its blocking. Live state, gone when idle.
	active map[wg.Key]time.Time
	byAddr map[netip.Addr]wg.Key
}

func newPeerState() peerState {
	return peerState{
		peers:  make(map[wg.Key][]netip.Prefix),
		block:  make(map[wg.Key][]string),
		active: make(map[wg.Key]time.Time),
		byAddr: make(map[netip.Addr]wg.Key),
	}
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

// onDevice returns what ch asks of the device: the changes and removals
// of the peers it holds. Authorised peers that are not active wait for
// their first handshake.
func (s *peerState) onDevice(ch change) (set []wg.Peer, remove []wg.Key) {
	for _, p := range ch.set {
		if _, ok := s.active[p.PublicKey]; ok {
			set = append(set, p)
		}
	}
	for _, k := range ch.remove {
		if _, ok := s.active[k]; ok {
			remove = append(remove, k)
		}
	}
	return set, remove
}

// commit records ch, applied to the device, and the map's version.
func (s *peerState) commit(version int64, ch change) {
	for _, p := range ch.set {
		_, active := s.active[p.PublicKey]
		s.forget(p.PublicKey)
		s.peers[p.PublicKey] = p.AllowedIPs
		if active {
			s.index(p.PublicKey)
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
		s.deactivate(k)
		delete(s.peers, k)
		delete(s.block, k)
	}
	s.version = version
}

// admission is what admit decides about an initiator.
type admission int

const (
	admitNo     admission = iota // not authorised, or already held
	admitYes                     // put it on the device
	admitNoRoom                  // authorised, but the device is full
)

// admit decides whether key, whose handshake initiation opened, goes on
// the device, which holds at most max peers; with admitYes, peer is its
// configuration. Call activate once the device holds it.
func (s *peerState) admit(key wg.Key, max int) (wg.Peer, admission) {
	allowed, ok := s.peers[key]
	if !ok {
		return wg.Peer{}, admitNo
	}
	if _, ok := s.active[key]; ok {
		return wg.Peer{}, admitNo
	}
	if len(s.active) >= max {
		return wg.Peer{}, admitNoRoom
	}
	return wg.Peer{PublicKey: key, AllowedIPs: allowed}, admitYes
}

// activate records that the device holds key since now.
func (s *peerState) activate(key wg.Key, now time.Time) {
	s.active[key] = now
	s.index(key)
}

// deactivate records that the device no longer holds key.
func (s *peerState) deactivate(key wg.Key) {
	if _, ok := s.active[key]; ok {
		s.forget(key)
		delete(s.active, key)
	}
}

// idle returns the active peers to take off the device: those whose last
// handshake (or, before one, whose admission) is older than timeout, and
// any peer the device holds that is not recorded as active.
func (s *peerState) idle(live []wg.PeerStats, now time.Time, timeout time.Duration) []wg.Key {
	var out []wg.Key
	for _, p := range live {
		since, ok := s.active[p.PublicKey]
		switch {
		case !ok:
			out = append(out, p.PublicKey)
		case p.LastHandshake.After(since):
			if now.Sub(p.LastHandshake) > timeout {
				out = append(out, p.PublicKey)
			}
		case now.Sub(since) > timeout:
			out = append(out, p.PublicKey)
		}
	}
	return out
}

// index adds k's addresses to the address index.
func (s *peerState) index(k wg.Key) {
	for _, a := range s.peers[k] {
		s.byAddr[a.Addr()] = k
	}
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
