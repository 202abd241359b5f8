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
	body, err := g.open(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer body.Close()
	if err := json.NewDecoder(body).Decode(out); err != nil {
		return fmt.Errorf("decoding control plane answer: %w", err)
	}
	return nil
}

// open sends one request to the control plane and returns the body of a
// 200 answer, for the caller to close.
func (g *Gateway) open(ctx context.Context, method, path string, in any) (io.ReadCloser, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encoding request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.cfg.ControlURL+path, body)
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+g.cfg.Token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := g.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var e apitypes.Error
		json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&e)
		return nil, &errStatus{code: resp.StatusCode, msg: e.Error}
	}
	return resp.Body, nil
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
		if err := g.poll(ctx, since); err != nil {
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

// poll asks for the changes since version since and applies them as
// they stream in, a batch of peers at a time, so that a map of a million
// devices is never held whole; between batches the bind can admit peers.
func (g *Gateway) poll(ctx context.Context, since int64) error {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.PollWait+15*time.Second)
	defer cancel()
	q := url.Values{"since": {strconv.FormatInt(since, 10)}, "wait": {g.cfg.PollWait.String()}}
	body, err := g.open(ctx, http.MethodGet, "/api/v1/gateway/peers?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	defer body.Close()
	return g.applyStream(json.NewDecoder(body))
}

// peerBatch is how many peers of a streamed map are applied at a time.
const peerBatch = 1024

// applyStream reads one apitypes.PeerMap from dec and applies it. Its
// version and full come before its peers, as the control plane writes
// them. A map cut short leaves the version where it was, so the next poll
// asks again; a device that refuses a change makes it ask for the whole
// map.
func (g *Gateway) applyStream(dec *json.Decoder) error {
	bad := func(what string) error { return fmt.Errorf("decoding peer map: %s", what) }
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return bad("not an object")
	}
	var (
		version          int64
		full, haveFull   bool
		haveVersion      bool
		removed          []string
		plans            map[string]apitypes.PlanLimits
		apply            *mapApply
		set, rm, invalid int
	)
	start := func() {
		g.mu.Lock()
		g.peers.setPlans(plans)
		apply = g.peers.begin(full, g.tunnel.pools)
		g.mu.Unlock()
	}
	take := func(ch change) error {
		g.mu.Lock()
		defer g.mu.Unlock()
		s, r := g.peers.onDevice(ch)
		if len(s) > 0 || len(r) > 0 {
			if err := g.dev.UpdatePeers(s, r); err != nil {
				g.peers.version = 0 // the device may be half updated
				return err
			}
		}
		g.peers.record(ch)
		set, rm, invalid = set+len(ch.set), rm+len(ch.remove), invalid+ch.invalid
		return nil
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return bad(err.Error())
		}
		switch t {
		case "version":
			err, haveVersion = dec.Decode(&version), true
		case "full":
			err, haveFull = dec.Decode(&full), true
		case "removed":
			err = dec.Decode(&removed)
		case "plans":
			err = dec.Decode(&plans)
		case "peers":
			if !haveVersion || !haveFull {
				return bad("peers before version and full")
			}
			start()
			err = g.streamPeers(dec, apply, take)
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			return bad(err.Error())
		}
	}
	if _, err := dec.Token(); err != nil || !haveVersion {
		return bad("cut short")
	}
	if apply == nil {
		start()
	}
	if err := take(apply.end(removed)); err != nil {
		return err
	}
	g.mu.Lock()
	g.peers.version = version
	authorized, active := len(g.peers.peers), len(g.peers.active)
	g.mu.Unlock()
	if set > 0 || rm > 0 || invalid > 0 {
		g.log.Info("peer map applied", "version", version, "full", full,
			"set", set, "removed", rm, "invalid", invalid, "authorized", authorized, "active", active)
	}
	return nil
}

// streamPeers decodes the peers array a batch at a time into take.
func (g *Gateway) streamPeers(dec *json.Decoder, apply *mapApply, take func(change) error) error {
	if t, err := dec.Token(); err != nil || t != json.Delim('[') {
		if err == nil && t == nil {
			return nil // "peers": null
		}
		return errors.New("peers is not a list")
	}
	batch := make([]apitypes.Peer, 0, peerBatch)
	flush := func() error {
		g.mu.Lock()
		ch := apply.peers(batch)
		g.mu.Unlock()
		batch = batch[:0]
		return take(ch)
	}
	for dec.More() {
		batch = append(batch, apitypes.Peer{})
		if err := dec.Decode(&batch[len(batch)-1]); err != nil {
			return err
		}
		if len(batch) == peerBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	_, err := dec.Token() // ]
	return err
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
