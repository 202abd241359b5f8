package gateway

import (
	"errors"
	"net"
	"net/netip"

	"veil/internal/pq"
	"veil/internal/wg"
)

// pqInstaller keeps and sets peers' post-quantum pre-shared keys
// (pq.Installer). The peer is the one the device holds for the request's
// source address: WireGuard lets a packet in only from the peer whose
// allowed IPs hold its source, so one peer cannot offer or confirm
// another's key.
type pqInstaller struct{ g *Gateway }

var _ pq.Installer = pqInstaller{}

// Offer implements pq.Installer.
func (in pqInstaller) Offer(src netip.Addr, respond func(wg.Key) (wg.Key, error)) (bool, error) {
	g := in.g
	g.mu.Lock()
	defer g.mu.Unlock()
	key, ok := g.peers.byAddr[src]
	if !ok {
		return false, nil
	}
	psk, err := respond(key)
	if err != nil {
		return false, err
	}
	g.peers.pskPending[key] = psk
	return true, nil
}

// Confirm implements pq.Installer.
func (in pqInstaller) Confirm(src netip.Addr, proves func(wg.Key) bool) (bool, error) {
	g := in.g
	g.mu.Lock()
	defer g.mu.Unlock()
	key, ok := g.peers.byAddr[src]
	if !ok {
		return false, nil
	}
	psk, ok := g.peers.pskPending[key]
	if !ok || !proves(psk) {
		return false, nil
	}
	if err := g.dev.SetPresharedKey(key, psk); err != nil {
		return false, err
	}
	delete(g.peers.pskPending, key)
	// Kept while the device is authorised, so that a peer taken off the
	// device when idle comes back with it.
	g.peers.psk[key] = psk
	return true, nil
}

// startPQ serves the post-quantum key exchange on the tunnel addresses,
// reached by peers only (listen opens sockets inside the tunnel; in tun
// mode the firewall refuses the port from any other interface).
func (g *Gateway) startPQ(tc tunnelConfig, listen func(netip.AddrPort) (net.Listener, error)) error {
	if g.cfg.DisablePQ {
		return nil
	}
	srv := pq.Server(pq.Handler(g.PublicKey(), pqInstaller{g}))
	var lns []net.Listener
	for _, a := range tc.addrs {
		ln, err := listen(netip.AddrPortFrom(a.Addr(), pq.Port))
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return errors.New("post-quantum key exchange on tunnel address: cannot listen")
		}
		lns = append(lns, ln)
	}
	g.mu.Lock()
	g.pq = srv
	g.mu.Unlock()
	for _, ln := range lns {
		go srv.Serve(ln) // until shutdown closes srv
	}
	return nil
}

// stopPQ stops the exchange's server.
func (g *Gateway) stopPQ() {
	g.mu.Lock()
	srv := g.pq
	g.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}
