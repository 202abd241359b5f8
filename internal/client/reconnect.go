package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"time"

	"veil/internal/apitypes"
	"veil/internal/wg"
)

// DefaultStaleAfter is TunnelConfig.StaleAfter's default: WireGuard
// renews a session every 2 minutes while the keepalive runs, so a last
// handshake older than this means the gateway no longer answers.
const DefaultStaleAfter = 3 * time.Minute

// Bounds of the wait between two looks at the server list that changed
// nothing: doubling from the first to the last, so that a gateway that
// is down for long costs one request every few minutes.
const (
	minBackoff = time.Second
	maxBackoff = 5 * time.Minute
)

// Watch keeps the tunnel pointed at a gateway that answers, until ctx
// ends or the tunnel is closed. When the last handshake is older than
// StaleAfter (or a changed peer has not answered within the handshake
// timeout) it fetches the server list again and, if the gateway's key or
// endpoint changed, changes the peer in place; if the gateway is gone or
// offline, it moves to another of the same Location. Status says
// "reconnecting" meanwhile. The kill switch stays in place throughout.
// Hold runs it.
func (t *Tunnel) Watch(ctx context.Context) {
	tick := time.NewTicker(min(time.Second, max(t.cfg.StaleAfter/4, 50*time.Millisecond)))
	defer tick.Stop()
	backoff := minBackoff
	var next time.Time // no attempt before this
	controlLooked := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.closed:
			return
		case <-tick.C:
		}
		if t.healthy() {
			if t.tun != nil {
				t.sealPortalIfUp()
			}
			if t.setReconnecting(false) {
				t.log.Info("tunnel restored")
				t.reprobeMTU(ctx)
				t.settlePQ()
				if !t.Status().QuantumResistant {
					t.logPQ(t.renewPQ(ctx))
				}
			}
			backoff, next = minBackoff, time.Time{}
			if t.tun != nil && time.Since(controlLooked) >= controlRefresh {
				controlLooked = time.Now()
				t.refreshControl(ctx)
			}
			continue
		}
		if !t.setReconnecting(true) {
			t.log.Info("no recent handshake with the gateway; reconnecting")
		}
		if time.Now().Before(next) {
			continue
		}
		changed, err := t.reconnect(ctx)
		switch {
		case err != nil:
			// Errors name no address or key: the ones that could are
			// replaced by their kind below.
			t.log.Warn("reconnect attempt failed", "err", err, "retry_in", backoff)
		case changed:
			t.log.Info("gateway changed; peer updated")
		default:
			t.log.Info("gateway unchanged; waiting", "retry_in", backoff)
			// Each transport is tried with each pre-shared key the
			// gateway may hold (pending, current, none): an answer of
			// the exchange may have been lost, or the gateway the key.
			on, wrapped, changed := t.cyclePSK()
			if changed {
				t.log.Info("trying the next pre-shared key the gateway may hold", "quantum_resistant", on)
			}
			if !changed || wrapped {
				if tr, ok := t.nextTransport(); ok {
					t.log.Info("trying another transport", "transport", tr)
				}
			}
		}
		if changed {
			// Give the new peer the first handshake's time to answer.
			next, backoff = time.Now().Add(t.cfg.HandshakeTimeout), minBackoff
			continue
		}
		next = time.Now().Add(backoff)
		backoff = min(2*backoff, maxBackoff)
	}
}

// controlRefresh is how often a working tun-mode tunnel looks the control
// plane up again.
const controlRefresh = 10 * time.Minute

// refreshControl looks the control plane's address up again while the
// tunnel works (the system resolver answers through it), so that a
// reconnect, which cannot resolve anything, finds the control plane where
// it is now and not where it was at connect time. A failed lookup keeps
// what is known.
func (t *Tunnel) refreshControl(ctx context.Context) {
	if t.cfg.Servers != nil || t.cfg.State == nil || t.cfg.State.Control == "" {
		return
	}
	lookup := t.lookupControl
	if lookup == nil {
		lookup = resolveControl
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	addrs, err := lookup(ctx, t.cfg.State.Control)
	if err != nil || len(addrs) == 0 {
		return
	}
	t.opMu.Lock()
	t.tun.setAPI(addrs)
	t.opMu.Unlock()
}

// setReconnecting sets the state and reports what it was.
func (t *Tunnel) setReconnecting(on bool) (was bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	was, t.reconnecting = t.reconnecting, on
	return was
}

// healthy reports whether the current peer has handshaken recently.
func (t *Tunnel) healthy() bool {
	t.mu.Lock()
	peer := t.peer
	t.mu.Unlock()
	peers, err := t.dev.Peers()
	if err != nil {
		return false
	}
	for _, p := range peers {
		if p.PublicKey == peer {
			return !p.LastHandshake.IsZero() && time.Since(p.LastHandshake) < t.cfg.StaleAfter
		}
	}
	return false
}

// errControl is the kind of a failed server list fetch; the error itself
// may name the control plane's address.
var errControl = errors.New("cannot fetch the server list")

// reconnect looks at the server list once and, if the gateway moved or
// went away, points the tunnel at where it is now, or at another.
func (t *Tunnel) reconnect(ctx context.Context) (changed bool, err error) {
	if t.hop != nil {
		return t.reconnectHop(ctx)
	}
	servers, err := t.fetchServers(ctx)
	if err != nil {
		return false, errControl
	}
	t.mu.Lock()
	cur, curKey, curEP := t.server, t.peer, t.endpoint
	t.mu.Unlock()
	next, ok := findOnline(servers, cur.Name)
	if !ok {
		if next, err = PickServer(servers, t.cfg.Location); err != nil {
			return false, ErrNoServer
		}
	}
	key, err := wg.ParseKey(next.PublicKey)
	if err != nil {
		return false, errors.New("the gateway's listed key is not valid")
	}
	ep, err := t.resolveEndpoint(ctx, next)
	if err != nil {
		return false, errors.New("cannot resolve the gateway's endpoint")
	}
	if key == curKey && ep == curEP && next.Name == cur.Name && transportInfo(next) == transportInfo(cur) {
		return false, nil
	}
	if err := t.movePeer(next, key, ep, t.tunnelDNS(next)); err != nil {
		return false, err
	}
	return true, nil
}

// tunnelDNS is s's resolver addresses that the tunnel carries.
func (t *Tunnel) tunnelDNS(s apitypes.Server) []netip.Addr {
	var dns []netip.Addr
	for _, a := range []string{s.TunnelIPv4, s.TunnelIPv6} {
		if a, err := parseAddr(a); err == nil && (a.Is4() || hasFamily(t.addrs, false)) {
			dns = append(dns, a)
		}
	}
	return dns
}

// findOnline returns the gateway called name if it is listed online.
func findOnline(servers []apitypes.Server, name string) (apitypes.Server, bool) {
	for _, s := range servers {
		if s.Name == name && s.Online && s.PublicKey != "" {
			return s, true
		}
	}
	return apitypes.Server{}, false
}

// resolveEndpoint finds where to reach s. A host name is resolved by the
// system only outside tun mode: in tun mode the system's resolver is the
// gateway's, behind the tunnel that does not answer.
func (t *Tunnel) resolveEndpoint(ctx context.Context, s apitypes.Server) (netip.AddrPort, error) {
	return serverEndpoint(ctx, s, t.tun == nil)
}

// fetchServers gets the server list: from TunnelConfig.Servers, or from
// the control plane, over a socket outside the tunnel in tun mode (the
// kill switch lets it through for the time of the request). The list is
// public; a saved session goes along while it is valid, and is renewed
// with the access code if the control plane asks for one.
func (t *Tunnel) fetchServers(ctx context.Context) ([]apitypes.Server, error) {
	if t.cfg.Servers != nil {
		return t.cfg.Servers(ctx)
	}
	st := t.cfg.State
	api := &API{Base: st.Control}
	if t.tun != nil {
		api.HTTP = t.tun.apiHTTP()
		t.opMu.Lock()
		err := t.tun.allowAPI(true)
		t.opMu.Unlock()
		if err != nil {
			return nil, err
		}
		defer func() {
			t.opMu.Lock()
			if err := t.tun.allowAPI(false); err != nil {
				t.log.Warn("closing the kill switch's control plane exception failed", "err", err)
			}
			t.opMu.Unlock()
		}()
	}
	if time.Until(st.Expires) > time.Minute {
		api.Token = st.Token
	}
	servers, err := api.Servers(ctx)
	if !errors.Is(err, ErrUnauthorized) || st.AccessCode == "" {
		return servers, err
	}
	sess, err := (&API{Base: st.Control, HTTP: api.HTTP}).Login(ctx, st.AccessCode)
	if err != nil {
		return nil, err
	}
	st.Token, st.Expires = sess.Token, sess.ExpiresAt
	if t.cfg.Dir != "" {
		if err := st.Save(t.cfg.Dir); err != nil {
			t.log.Warn("saving the renewed session failed", "err", err)
		}
	}
	api.Token = sess.Token
	return api.Servers(ctx)
}

// movePeer points the tunnel at key and ep. With the kill switch, the
// new endpoint is let out before the peer changes, and the old one is
// shut only after: each step is one nftables transaction, and none lets
// out anything but the two WireGuard flows.
func (t *Tunnel) movePeer(srv apitypes.Server, key wg.Key, ep netip.AddrPort, dns []netip.Addr) error {
	t.opMu.Lock()
	defer t.opMu.Unlock()
	select {
	case <-t.closed:
		return errors.New("tunnel closed")
	default:
	}
	gw := transportInfo(srv)
	t.mu.Lock()
	oldKey, oldEP, oldGW := t.peer, t.endpoint, t.gw
	t.mu.Unlock()
	oldFlows, newFlows := flowsTo(oldEP, oldGW), flowsTo(ep, gw)
	if t.tun != nil {
		if err := t.tun.allowEndpoints(oldFlows.plus(newFlows)); err != nil {
			return err
		}
	}
	t.useGateway(gw)
	var remove []wg.Key
	if key != oldKey {
		remove = []wg.Key{oldKey}
	}
	if err := t.dev.UpdatePeers([]wg.Peer{t.peerConfig(key, ep)}, remove); err != nil {
		t.useGateway(oldGW)
		if t.tun != nil {
			t.tun.allowEndpoints(oldFlows)
		}
		return err
	}
	t.mu.Lock()
	t.server, t.peer, t.endpoint, t.gw = srv, key, ep, gw
	dnsChanged := !slices.Equal(dns, t.dns) && len(dns) > 0
	if dnsChanged {
		t.dns = dns
	}
	t.mu.Unlock()
	var errs []error
	if t.tun != nil {
		if err := t.tun.allowEndpoints(newFlows); err != nil {
			errs = append(errs, err)
		}
		if dnsChanged {
			errs = append(errs, t.tun.setDNS(dns))
		}
	}
	if t.proxy != nil && dnsChanged {
		t.proxy.dialer.resolver.setServers(dns)
	}
	return errors.Join(errs...)
}

// resolveControl returns the addresses of the control plane's URL.
func resolveControl(ctx context.Context, control string) ([]netip.AddrPort, error) {
	u, err := url.Parse(control)
	if err != nil || u.Hostname() == "" {
		return nil, fmt.Errorf("bad control URL")
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	pn, err := net.LookupPort("tcp", port)
	if err != nil {
		return nil, err
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", u.Hostname())
	if err != nil {
		return nil, err
	}
	out := make([]netip.AddrPort, 0, len(ips))
	for _, ip := range ips {
		out = append(out, netip.AddrPortFrom(ip.Unmap(), uint16(pn)))
	}
	return out, nil
}
