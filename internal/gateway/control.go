package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"veil/internal/apitypes"
)

// errStatus is a control-plane answer other than 200.
type errStatus struct {
	code int
	msg  string
}

func (e *errStatus) Error() string {
	if e.msg != "" {
		return fmt.Sprintf("control plane answered %d: %s", e.code, e.msg)
	}
	return fmt.Sprintf("control plane answered %d", e.code)
}

// call sends one request to the control plane and decodes a 200 answer
// into out.
func (g *Gateway) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encoding request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.cfg.ControlURL+path, body)
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+g.cfg.Token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := g.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e apitypes.Error
		json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&e)
		return &errStatus{code: resp.StatusCode, msg: e.Error}
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decoding control plane answer: %w", err)
	}
	return nil
}

// report sends the aggregate load and returns the gateway's configuration.
func (g *Gateway) report(ctx context.Context) (apitypes.GatewayConfig, error) {
	st := g.Stats()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var gc apitypes.GatewayConfig
	err := g.call(ctx, http.MethodPost, "/api/v1/gateway/report", apitypes.GatewayReport{
		PublicKey: g.PublicKey().Base64(),
		Egress:    g.egress(),
		Peers:     st.Peers,
		RxBytes:   st.RxBytes,
		TxBytes:   st.TxBytes,
	}, &gc)
	return gc, err
}

// firstReport reports until the control plane answers: the gateway
// cannot serve before it knows its tunnel addresses.
func (g *Gateway) firstReport(ctx context.Context) (apitypes.GatewayConfig, error) {
	var wait time.Duration
	for {
		gc, err := g.report(ctx)
		if err == nil {
			return gc, nil
		}
		if ctx.Err() != nil {
			return apitypes.GatewayConfig{}, ctx.Err()
		}
		var es *errStatus
		if errors.As(err, &es) && es.code == http.StatusUnauthorized {
			g.log.Error("control plane refused the gateway token; retrying", "err", err)
		} else {
			g.log.Warn("control plane unreachable; retrying", "err", errText(err))
		}
		wait = backoff(wait, g.cfg.RetryMax)
		if !sleep(ctx, wait) {
			return apitypes.GatewayConfig{}, ctx.Err()
		}
	}
}

// reportLoop reports the load every ReportEvery.
func (g *Gateway) reportLoop(ctx context.Context) {
	t := time.NewTicker(g.cfg.ReportEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		gc, err := g.report(ctx)
		if err != nil {
			if ctx.Err() == nil {
				g.log.Warn("load report failed", "err", errText(err))
			}
			continue
		}
		g.mu.Lock()
		have := g.tunnel.addrs
		g.mu.Unlock()
		if tc, err := parseTunnelConfig(gc); err == nil && !samePrefixes(tc.addrs, have) {
			g.log.Warn("control plane changed the tunnel addresses; restart the gateway to apply")
		}
	}
}

// syncLoop follows the peer map by long polling. While the control plane
// is unreachable the device keeps its peers, so tunnels stay up.
func (g *Gateway) syncLoop(ctx context.Context) {
	var wait time.Duration
	for ctx.Err() == nil {
		g.mu.Lock()
		since := g.peers.version
		g.mu.Unlock()
		m, err := g.poll(ctx, since)
		if err == nil {
			err = g.apply(m)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			wait = backoff(wait, g.cfg.RetryMax)
			g.log.Warn("peer sync failed; keeping current peers", "err", errText(err), "retry_in", wait)
			sleep(ctx, wait)
			continue
		}
		wait = 0
	}
}

// poll asks for the changes since version since.
func (g *Gateway) poll(ctx context.Context, since int64) (apitypes.PeerMap, error) {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.PollWait+15*time.Second)
	defer cancel()
	q := url.Values{"since": {strconv.FormatInt(since, 10)}, "wait": {g.cfg.PollWait.String()}}
	var m apitypes.PeerMap
	err := g.call(ctx, http.MethodGet, "/api/v1/gateway/peers?"+q.Encode(), nil, &m)
	return m, err
}

// apply takes the peer map m into the authorised set, and its changes
// and removals of active peers onto the device, one peer at a time.
func (g *Gateway) apply(m apitypes.PeerMap) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	ch := g.peers.diff(m, g.tunnel.pools) // g.mu guards both
	set, remove := g.peers.onDevice(ch)
	if len(set) > 0 || len(remove) > 0 {
		if err := g.dev.UpdatePeers(set, remove); err != nil {
			// The device may be half updated: ask for the whole map.
			g.peers.version = 0
			return err
		}
	}
	g.peers.commit(m.Version, ch)
	if len(ch.set) > 0 || len(ch.remove) > 0 || ch.invalid > 0 {
		g.log.Info("peer map applied", "version", m.Version, "full", m.Full,
			"set", len(ch.set), "removed", len(ch.remove), "invalid", ch.invalid,
			"authorized", len(g.peers.peers), "active", len(g.peers.active))
	}
	return nil
}

// errText is err's text for a log line. Network errors from net/http
// name the control plane's URL, which is the operator's, not a user's.
func errText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}
