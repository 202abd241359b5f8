package controlplane

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"veil/internal/account"
	"veil/internal/apitypes"
	"veil/internal/config"
	"veil/internal/store"
)

// onlineWithin is how recent a gateway's last report must be for the
// server list to call it online; gateways report every 30 s.
const onlineWithin = 90 * time.Second

func (s *Server) serverView(g *store.Gateway) apitypes.Server {
	g4, g6 := s.cfg.Pools.Gateway()
	load := g.Peers * 100 / s.cfg.GatewayCapacity
	cc, _, _ := strings.Cut(g.Location, "-")
	return apitypes.Server{
		Name: g.Name, Location: g.Location, Country: cc, Endpoint: g.Endpoint,
		PublicKey: g.PublicKey, TLSPort: g.TLSPort, QUICPort: g.QUICPort, CertPin: g.CertPin,
		TunnelIPv4: g4.Addr().String(), TunnelIPv6: g6.Addr().String(),
		Proxy:  proxyAddr(g),
		Load:   min(load, 100),
		Online: !g.LastSeen.IsZero() && s.cfg.Now().Sub(g.LastSeen) < onlineWithin,
	}
}

func (s *Server) listServers(w http.ResponseWriter, r *http.Request) {
	gws, err := s.cfg.Store.Gateways(r.Context())
	if err != nil {
		s.fail(w, "listing gateways", err)
		return
	}
	resolved := s.resolveEndpoints(r.Context(), gws)
	out := make([]apitypes.Server, 0, len(gws))
	for i := range gws {
		v := s.serverView(&gws[i])
		v.EndpointAddrs = resolved[v.Endpoint]
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) gatewayReport(w http.ResponseWriter, r *http.Request) {
	gw := r.Context().Value(ctxGateway).(*store.Gateway)
	var rep apitypes.GatewayReport
	if err := decode(w, r, &rep); err != nil {
		writeDecodeError(w, err)
		return
	}
	if rep.Peers < 0 {
		writeError(w, http.StatusBadRequest, "peers must not be negative")
		return
	}
	if rep.ProxyPort < 0 || rep.ProxyPort > 65535 {
		writeError(w, http.StatusBadRequest, "proxy_port must be a port number")
		return
	}
	egress, err := egressAddrs(rep.Egress)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := checkTransports(rep); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.cfg.Store.ReportGatewayLoad(r.Context(), gw.ID, store.GatewayLoad{
		PublicKey: rep.PublicKey, Egress: egress, TLSPort: rep.TLSPort, QUICPort: rep.QUICPort, CertPin: rep.CertPin,
		ProxyPort: rep.ProxyPort, Peers: rep.Peers, RxBytes: rep.RxBytes, TxBytes: rep.TxBytes,
		At: s.cfg.Now().UTC(),
	}); err != nil {
		s.fail(w, "recording gateway load", err)
		return
	}
	g4, g6 := s.cfg.Pools.Gateway()
	writeJSON(w, http.StatusOK, apitypes.GatewayConfig{
		Name: gw.Name, TunnelIPv4: g4.String(), TunnelIPv6: g6.String(),
	})
}

// Long-poll bounds for GET /api/v1/gateway/peers.
const (
	defaultWait = 25 * time.Second
	maxWait     = 60 * time.Second
)

// gatewayPeers answers the peer map since ?since=V, waiting up to ?wait=
// for a change when there is none yet.
func (s *Server) gatewayPeers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var since int64
	if v := q.Get("since"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "since must be a version number")
			return
		}
		since = n
	}
	wait := defaultWait
	if v := q.Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			writeError(w, http.StatusBadRequest, "wait must be a duration like 25s")
			return
		}
		wait = min(d, maxWait)
	}
	// since is the version the gateway holds: tombstones every gateway
	// holds can go.
	gw := r.Context().Value(ctxGateway).(*store.Gateway)
	if err := s.cfg.Store.GatewaySynced(r.Context(), gw.ID, since); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.fail(w, "recording gateway sync", err)
		return
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		// Take the wake-up channel before reading, so a change that lands
		// between the read and the wait is not missed.
		changed := s.peers.wait()
		v, err := s.cfg.Store.PeerVersion(r.Context())
		if err != nil {
			s.fail(w, "reading peer map", err)
			return
		}
		if since == 0 || v != since {
			s.streamPeerMap(w, r, since)
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			writeJSON(w, http.StatusOK, apitypes.PeerMap{Version: since, Plans: s.planLimits(), Peers: []apitypes.Peer{}})
			return
		case <-r.Context().Done():
			return
		}
	}
}

// streamPeerMap writes the peer map since since as apitypes.PeerMap's
// JSON, compact, each peer encoded as the store reads it, so a full map
// of any size costs constant memory here; gzipped when the gateway
// accepts it (a full map shrinks to a third). An error after the first
// peer cuts the answer short, which the gateway takes as a failed poll.
func (s *Server) streamPeerMap(w http.ResponseWriter, r *http.Request, since int64) {
	var out io.Writer = w
	started := false
	var gz *gzip.Writer
	start := func(h *store.PeerChanges) {
		started = true
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Add("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			w.Header().Set("Content-Encoding", "gzip")
			gz, _ = gzip.NewWriterLevel(w, gzip.BestSpeed)
			out = gz
		}
		w.WriteHeader(http.StatusOK)
		fmt.Fprintf(out, `{"version":%d,"full":%t,`, h.Version, h.Full)
		if plans := s.planLimits(); plans != nil {
			io.WriteString(out, `"plans":`)
			json.NewEncoder(out).Encode(plans)
			io.WriteString(out, ",")
		}
		io.WriteString(out, `"peers":[`)
	}
	enc := json.NewEncoder(out)
	n := 0
	filter := s.mapFilter(r.Context().Value(ctxGateway).(*store.Gateway))
	pc, err := s.cfg.Store.StreamPeers(r.Context(), since, func(h *store.PeerChanges, p store.Peer) error {
		if !started {
			start(h)
			enc = json.NewEncoder(out)
		}
		if !filter.keep(h.Full, p) {
			return nil
		}
		if n > 0 {
			io.WriteString(out, ",")
		}
		n++
		return enc.Encode(s.peerView(p)) // Encode's newline is JSON white space
	})
	if err != nil {
		if !started {
			s.fail(w, "reading peer map", err)
		} else {
			s.log.Warn("peer map cut short", "err", err)
			if gz != nil {
				gz.Close()
			}
			panic(http.ErrAbortHandler) // the gateway must not take a truncated map
		}
		return
	}
	if !started {
		start(pc)
	}
	io.WriteString(out, "]")
	if removed := append(pc.Removed, filter.removed...); len(removed) > 0 {
		io.WriteString(out, `,"removed":`)
		json.NewEncoder(out).Encode(removed)
	}
	io.WriteString(out, "}\n")
	if gz != nil {
		gz.Close()
	}
}

// acceptsGzip reports whether the request's Accept-Encoding takes gzip.
func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for part := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if strings.EqualFold(strings.TrimSpace(name), "gzip") && strings.ReplaceAll(params, " ", "") != "q=0" {
				return true
			}
		}
	}
	return false
}

func (s *Server) peerView(p store.Peer) apitypes.Peer {
	if p.ProxyHash != "" {
		return apitypes.Peer{PublicKey: p.PublicKey, AllowedIPs: []string{}, Plan: p.Plan, ProxyHash: p.ProxyHash}
	}
	a4, a6 := s.cfg.Pools.AllowedIPs(p.AddrIndex)
	return apitypes.Peer{PublicKey: p.PublicKey, AllowedIPs: []string{a4.String(), a6.String()}, Plan: p.Plan, Block: p.Block}
}

// egressAddrs checks a report's egress addresses and writes them in
// their canonical form.
func egressAddrs(in []string) ([]string, error) {
	if len(in) > apitypes.MaxEgress {
		return nil, fmt.Errorf("at most %d egress addresses", apitypes.MaxEgress)
	}
	var out []string
	for _, s := range in {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return nil, errors.New("egress addresses must be IP addresses")
		}
		out = append(out, a.Unmap().String())
	}
	return out, nil
}

// GatewayAddrs maps every address that is one of the gateways' to the
// gateway's name: endpoint addresses (names resolved as for the server
// list) and the egress addresses gateways report. My IP and the DNS leak
// test use it to recognise traffic that came through a gateway.
func (s *Server) GatewayAddrs(ctx context.Context) (map[netip.Addr]string, error) {
	gws, err := s.cfg.Store.Gateways(ctx)
	if err != nil {
		return nil, err
	}
	resolved := s.resolveEndpoints(ctx, gws)
	out := make(map[netip.Addr]string)
	for _, g := range gws {
		var addrs []string
		if host, _, err := net.SplitHostPort(g.Endpoint); err == nil {
			addrs = append(addrs, host)
		}
		for _, ap := range resolved[g.Endpoint] {
			if host, _, err := net.SplitHostPort(ap); err == nil {
				addrs = append(addrs, host)
			}
		}
		for _, a := range append(addrs, g.Egress...) {
			if ip, err := netip.ParseAddr(a); err == nil {
				out[ip.Unmap()] = g.Name
			}
		}
	}
	return out, nil
}

// resolveEndpoints resolves the host names among gws' endpoints.
func (s *Server) resolveEndpoints(ctx context.Context, gws []store.Gateway) map[string][]string {
	eps := make([]string, len(gws))
	for i := range gws {
		eps[i] = gws[i].Endpoint
	}
	return s.endpoints.resolve(ctx, eps)
}

func validEndpoint(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n > 0 && n < 65536
}

func validGatewayName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}

func (s *Server) adminCreateGateway(w http.ResponseWriter, r *http.Request) {
	var req apitypes.GatewayCreateRequest
	if err := decode(w, r, &req); err != nil {
		writeDecodeError(w, err)
		return
	}
	tok, g, err := s.AddGateway(r.Context(), req, false)
	switch {
	case errors.Is(err, errBadRequest):
		writeError(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), errBadRequest.Error()+": "))
	case errors.Is(err, store.ErrDuplicateName):
		writeError(w, http.StatusConflict, "a gateway of that name exists")
	case err != nil:
		s.fail(w, "adding gateway", err)
	default:
		writeJSON(w, http.StatusCreated, apitypes.GatewayCreated{Token: tok, Server: s.serverView(g)})
	}
}

// AddGateway validates and registers a gateway, returning its token, which
// is stored only as a keyed hash.
func (s *Server) AddGateway(ctx context.Context, req apitypes.GatewayCreateRequest, builtin bool) (string, *store.Gateway, error) {
	if err := checkGateway(req); err != nil {
		return "", nil, err
	}
	tok, err := account.NewToken()
	if err != nil {
		return "", nil, err
	}
	g := &store.Gateway{
		Name: req.Name, Location: req.Location, Endpoint: req.Endpoint,
		TokenHash: s.cfg.Hasher.Token(tok), Builtin: builtin, CreatedAt: s.cfg.Now().UTC(),
	}
	id, err := s.cfg.Store.CreateGateway(ctx, g)
	if err != nil {
		return "", nil, err
	}
	g.ID = id
	return tok, g, nil
}

// checkGateway validates a gateway registration.
func checkGateway(req apitypes.GatewayCreateRequest) error {
	switch {
	case !validGatewayName(req.Name):
		return fmt.Errorf("%w: name: lower-case letters, digits and dashes, up to 63", errBadRequest)
	case !config.ValidLocation(req.Location):
		return fmt.Errorf("%w: location must look like se-sto: a country code, a dash, a city code", errBadRequest)
	case !validEndpoint(req.Endpoint):
		return fmt.Errorf("%w: endpoint must be HOST:PORT", errBadRequest)
	}
	return nil
}

func (s *Server) adminListGateways(w http.ResponseWriter, r *http.Request) {
	s.listServers(w, r)
}

func (s *Server) adminDeleteGateway(w http.ResponseWriter, r *http.Request) {
	err := s.cfg.Store.DeleteGateway(r.Context(), r.PathValue("name"))
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no such gateway")
		return
	}
	if err != nil {
		s.fail(w, "deleting gateway", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// EnsureBuiltinGateway registers the gateway that `veil serve` runs itself
// with the given token, or updates its location, endpoint and token. The
// token lives only in the serving process.
func (s *Server) EnsureBuiltinGateway(ctx context.Context, req apitypes.GatewayCreateRequest, token string) error {
	if err := checkGateway(req); err != nil {
		return err
	}
	g, err := s.cfg.Store.GatewayByName(ctx, req.Name)
	if errors.Is(err, store.ErrNotFound) {
		_, err = s.cfg.Store.CreateGateway(ctx, &store.Gateway{
			Name: req.Name, Location: req.Location, Endpoint: req.Endpoint,
			TokenHash: s.cfg.Hasher.Token(token), Builtin: true, CreatedAt: s.cfg.Now().UTC(),
		})
		return err
	}
	if err != nil {
		return err
	}
	g.Location, g.Endpoint, g.TokenHash = req.Location, req.Endpoint, s.cfg.Hasher.Token(token)
	return s.cfg.Store.UpdateGateway(ctx, g)
}

// Servers are the gateways as the public server list shows them, their
// endpoints' host names not resolved.
func (s *Server) Servers(ctx context.Context) ([]apitypes.Server, error) {
	gws, err := s.cfg.Store.Gateways(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]apitypes.Server, 0, len(gws))
	for i := range gws {
		out = append(out, s.serverView(&gws[i]))
	}
	return out, nil
}

// checkTransports checks a report's TLS and QUIC ports and pin: ports
// in range, and a pin (a base64 SHA-256) whenever a port is given.
func checkTransports(rep apitypes.GatewayReport) error {
	for _, p := range []int{rep.TLSPort, rep.QUICPort} {
		if p < 0 || p > 65535 {
			return fmt.Errorf("port %d out of range", p)
		}
	}
	if rep.TLSPort == 0 && rep.QUICPort == 0 && rep.CertPin == "" {
		return nil
	}
	if b, err := base64.StdEncoding.DecodeString(rep.CertPin); err != nil || len(b) != sha256.Size {
		return errors.New("cert_pin must be the base64 SHA-256 of the certificate's public key")
	}
	return nil
}
