package gateway

import (
	"crypto/sha256"
	"encoding/hex"
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
	// gen counts the full maps taken; a peer's allowed carries the gen
	// of the last full map that named it.
	gen uint32
	// peers is the authorised set: each device's allowed IPs, compact
	// and free of pointers, so that a million cost little memory and the
	// garbage collector nothing to scan; extra holds the rare device
	// whose allowed IPs do not fit that shape.
	peers map[wg.Key]allowed
	extra map[wg.Key][]netip.Prefix
	// block holds each peer's DNS blocking categories: configuration
	// from the peer map, never activity.
	block map[wg.Key][]string
	// active are the peers the device holds, with when each was put
	// there (Unix nanoseconds); byAddr finds an active peer by tunnel
	// address, so the resolver can apply its blocking. Live state, gone
	// when idle.
	active map[wg.Key]int64
	byAddr map[netip.Addr]wg.Key
	// classes numbers the plan classes peers carry (allowed.class); bps
	// is each class's cap from the peer map's header, 0 for none; caps
	// applies them to the active peers (limit.go).
	classes map[string]uint8
	bps     [256]int64
	caps    *limiter
	// proxy holds the browser extensions' credential hashes by device
	// key, stamped with gen like peers; proxyKey finds the key by hash.
	// They are never WireGuard peers.
	proxy    map[wg.Key]proxyCred
	proxyKey map[[sha256.Size]byte]wg.Key
	// psk holds the post-quantum pre-shared keys peers agreed with the
	// gateway (pq.go), put back on the device when an idle peer returns;
	// a key leaves with its device. pskPending holds the keys offered
	// and not yet confirmed, one a peer. RAM only.
	psk, pskPending map[wg.Key]wg.Key
}

// proxyCred is one extension device's credential hash.
type proxyCred struct {
	hash [sha256.Size]byte
	gen  uint32
}

func newPeerState() peerState {
	return peerState{
		peers:   make(map[wg.Key]allowed),
		extra:   make(map[wg.Key][]netip.Prefix),
		block:   make(map[wg.Key][]string),
		active:  make(map[wg.Key]int64),
		byAddr:  make(map[netip.Addr]wg.Key),
		classes: make(map[string]uint8),
		caps:    newLimiter(),

		proxy:    make(map[wg.Key]proxyCred),
		proxyKey: make(map[[sha256.Size]byte]wg.Key),
		psk:      make(map[wg.Key]wg.Key),

		pskPending: make(map[wg.Key]wg.Key),
	}
}

// change is what one peer map asks of the device.
type change struct {
	set     []wg.Peer
	remove  []wg.Key
	block   map[wg.Key][]string // peers whose blocking categories changed
	class   map[wg.Key]uint8    // peers whose plan class is new or changed
	invalid int                 // entries skipped: bad key, or no allowed IP inside a pool
}

// mapApply takes one peer map into s as it streams in: its peers batch
// by batch, then its end. A full map becomes the additions, changes and
// removals against s, never a replace of every peer; allowed IPs outside
// the tunnel pools are dropped, so a peer can never claim traffic for
// other destinations.
type mapApply struct {
	s     *peerState
	pools []netip.Prefix
	full  bool
	// seen are a delta's peers, so that a key it both removes and adds
	// stays; a full map stamps its peers with s.gen instead, which costs
	// no memory however large the map.
	seen map[wg.Key]bool
}

// begin starts applying a map; full says whether it is the whole map.
func (s *peerState) begin(full bool, pools []netip.Prefix) *mapApply {
	a := &mapApply{s: s, pools: pools, full: full}
	if full {
		s.gen++
	} else {
		a.seen = make(map[wg.Key]bool)
	}
	return a
}

// peers returns the changes that one batch of the map's peers asks for.
// Commit it before the next batch.
func (a *mapApply) peers(batch []apitypes.Peer) change {
	s := a.s
	ch := change{block: make(map[wg.Key][]string), class: make(map[wg.Key]uint8)}
	for _, p := range batch {
		key, err := wg.ParseKey(p.PublicKey)
		if err != nil {
			ch.invalid++
			continue
		}
		if p.ProxyHash != "" {
			if !s.setProxy(key, p.ProxyHash) {
				ch.invalid++
				continue
			}
			if a.seen != nil {
				a.seen[key] = true
			}
			continue
		}
		allowed := allowedIPs(p.AllowedIPs, a.pools)
		if len(allowed) == 0 {
			ch.invalid++
			continue
		}
		if a.seen != nil {
			a.seen[key] = true
		}
		if !slices.Equal(s.block[key], p.Block) {
			ch.block[key] = p.Block
		}
		class := s.classIndex(p.Plan)
		old, ok := s.peers[key]
		if !ok || old.class != class {
			ch.class[key] = class
		}
		if ok && slices.Equal(s.allowedIPs(key), allowed) {
			old.gen = s.gen
			s.peers[key] = old
			continue
		}
		ch.set = append(ch.set, wg.Peer{PublicKey: key, AllowedIPs: allowed})
	}
	return ch
}

// end returns the map's last change: for a full map, the removal of every
// peer it did not name; for a delta, its removals.
func (a *mapApply) end(removed []string) change {
	s := a.s
	ch := change{block: make(map[wg.Key][]string)}
	if a.full {
		for key, al := range s.peers {
			if al.gen != s.gen {
				ch.remove = append(ch.remove, key)
			}
		}
		for key, c := range s.proxy {
			if c.gen != s.gen {
				s.dropProxy(key)
			}
		}
		return ch
	}
	for _, r := range removed {
		key, err := wg.ParseKey(r)
		if err != nil {
			ch.invalid++
			continue
		}
		if _, ok := s.peers[key]; ok && !a.seen[key] {
			ch.remove = append(ch.remove, key)
		}
		if _, ok := s.proxy[key]; ok && !a.seen[key] {
			s.dropProxy(key)
		}
	}
	return ch
}

// diff is the whole of one map m's changes at once, for a map at hand.
func (s *peerState) diff(m apitypes.PeerMap, pools []netip.Prefix) change {
	a := s.begin(m.Full, pools)
	ch := a.peers(m.Peers)
	last := a.end(m.Removed)
	ch.remove = last.remove
	ch.invalid += last.invalid
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
	s.record(ch)
	s.version = version
}

// record records ch, applied to the device.
func (s *peerState) record(ch change) {
	for _, p := range ch.set {
		_, active := s.active[p.PublicKey]
		s.forget(p.PublicKey)
		s.setAllowed(p.PublicKey, p.AllowedIPs)
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
	for k, c := range ch.class {
		if a, ok := s.peers[k]; ok {
			a.class = c
			s.peers[k] = a
		}
	}
	for _, p := range ch.set {
		s.refreshCap(p.PublicKey)
	}
	for k := range ch.class {
		s.refreshCap(k)
	}
	for _, k := range ch.remove {
		s.deactivate(k)
		delete(s.peers, k)
		delete(s.extra, k)
		delete(s.block, k)
		delete(s.psk, k)
		delete(s.pskPending, k)
	}
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
	if _, ok := s.peers[key]; !ok {
		return wg.Peer{}, admitNo
	}
	if _, ok := s.active[key]; ok {
		return wg.Peer{}, admitNo
	}
	if len(s.active) >= max {
		return wg.Peer{}, admitNoRoom
	}
	p := wg.Peer{PublicKey: key, AllowedIPs: s.allowedIPs(key)}
	if psk, ok := s.psk[key]; ok {
		p.PresharedKey = &psk
	}
	return p, admitYes
}

// activate records that the device holds key since now.
func (s *peerState) activate(key wg.Key, now time.Time) {
	s.active[key] = now.UnixNano()
	s.index(key)
	s.refreshCap(key)
}

// deactivate records that the device no longer holds key.
func (s *peerState) deactivate(key wg.Key) {
	if _, ok := s.active[key]; ok {
		s.forget(key)
		delete(s.active, key)
		s.caps.drop(key)
	}
}

// idle returns the active peers to take off the device: those whose last
// handshake (or, before one, whose admission) is older than timeout, and
// any peer the device holds that is not recorded as active.
func (s *peerState) idle(live []wg.PeerStats, now time.Time, timeout time.Duration) []wg.Key {
	var out []wg.Key
	for _, p := range live {
		at, ok := s.active[p.PublicKey]
		since := time.Unix(0, at)
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
	for _, a := range s.allowedIPs(k) {
		s.byAddr[a.Addr()] = k
	}
}

// forget drops k's addresses from the address index.
func (s *peerState) forget(k wg.Key) {
	for _, a := range s.allowedIPs(k) {
		if s.byAddr[a.Addr()] == k {
			delete(s.byAddr, a.Addr())
		}
	}
}

// allowed is a device's allowed IPs in the shape the control plane gives
// every device, one IPv4 and one IPv6 prefix at most, and its plan class,
// without pointers, in 28 bytes.
type allowed struct {
	v4           [4]byte
	v6           [16]byte
	bits4, bits6 uint8
	has          uint8  // has4 | has6
	class        uint8  // see peerState.classes
	gen          uint32 // see peerState.gen
}

const (
	has4 = 1 << iota
	has6
)

// compact returns ps as an allowed, and whether they fit its shape.
func compact(ps []netip.Prefix) (allowed, bool) {
	var a allowed
	for _, p := range ps {
		switch {
		case p.Addr().Is4() && a.has&has4 == 0:
			a.v4, a.bits4, a.has = p.Addr().As4(), uint8(p.Bits()), a.has|has4
		case p.Addr().Is6() && a.has&has6 == 0 && p.Addr().Zone() == "":
			a.v6, a.bits6, a.has = p.Addr().As16(), uint8(p.Bits()), a.has|has6
		default:
			return allowed{}, false
		}
	}
	return a, true
}

// setAllowed records k's allowed IPs, sorted as allowedIPs returns them.
func (s *peerState) setAllowed(k wg.Key, ps []netip.Prefix) {
	a, ok := compact(ps)
	a.gen, a.class = s.gen, s.peers[k].class
	s.peers[k] = a
	if ok {
		delete(s.extra, k)
	} else {
		s.extra[k] = ps
	}
}

// allowedIPs returns k's allowed IPs, IPv4 first; nil if unknown.
func (s *peerState) allowedIPs(k wg.Key) []netip.Prefix {
	if ps, ok := s.extra[k]; ok {
		return ps
	}
	a, ok := s.peers[k]
	if !ok {
		return nil
	}
	out := make([]netip.Prefix, 0, 2)
	if a.has&has4 != 0 {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4(a.v4), int(a.bits4)))
	}
	if a.has&has6 != 0 {
		out = append(out, netip.PrefixFrom(netip.AddrFrom16(a.v6), int(a.bits6)))
	}
	return out
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

// setProxy records key's proxy credential hash (hex), stamped with the
// current gen; false if the hash is malformed.
func (s *peerState) setProxy(key wg.Key, hexHash string) bool {
	var h [sha256.Size]byte
	if len(hexHash) != 2*sha256.Size {
		return false
	}
	if _, err := hex.Decode(h[:], []byte(hexHash)); err != nil {
		return false
	}
	if old, ok := s.proxy[key]; ok && old.hash != h {
		delete(s.proxyKey, old.hash)
	}
	s.proxy[key] = proxyCred{hash: h, gen: s.gen}
	s.proxyKey[h] = key
	return true
}

// dropProxy forgets key's proxy credential.
func (s *peerState) dropProxy(key wg.Key) {
	if c, ok := s.proxy[key]; ok {
		if s.proxyKey[c.hash] == key {
			delete(s.proxyKey, c.hash)
		}
		delete(s.proxy, key)
	}
}

// proxyAllowed reports whether h is the hash of a credential the peer
// map lets in.
func (s *peerState) proxyAllowed(h [sha256.Size]byte) bool {
	_, ok := s.proxyKey[h]
	return ok
}
