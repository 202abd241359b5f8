package client

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"time"
)

// newHTTPProxy returns an HTTP proxy server: CONNECT tunnels and plain
// http:// requests, both dialled through the tunnel. It adds no
// Forwarded or X-Forwarded-For header: the far side learns nothing of
// this machine.
func newHTTPProxy(dial dialFunc, log *slog.Logger) *http.Server {
	tr := &http.Transport{
		DialContext:           dial,
		ForceAttemptHTTP2:     false,
		MaxIdleConns:          32,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			// The outgoing URL is the absolute one the client sent.
			r.Out.URL = r.In.URL
			r.Out.Host = r.In.Host
		},
		Transport: tr,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			log.Debug("http proxy request failed")
			proxyError(w, err)
		},
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodConnect:
			httpConnect(w, r, dial, log)
		case r.URL.IsAbs() && r.URL.Scheme == "http":
			rp.ServeHTTP(w, r)
		default:
			http.Error(w, "veil: this is a proxy; send CONNECT or an absolute http:// URL", http.StatusBadRequest)
		}
	})
	return &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(slog.DiscardHandler, 0)}
}

func httpConnect(w http.ResponseWriter, r *http.Request, dial dialFunc, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	up, err := dial(ctx, "tcp", r.Host)
	cancel()
	if err != nil {
		log.Debug("http proxy connect failed")
		proxyError(w, err)
		return
	}
	defer up.Close()
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "veil: cannot tunnel on this connection", http.StatusInternalServerError)
		return
	}
	c, brw, err := hj.Hijack()
	if err != nil {
		return
	}
	defer c.Close()
	c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	// Bytes the client sent after its request are buffered in brw.
	var from io.Reader = c
	if n := brw.Reader.Buffered(); n > 0 {
		from = io.MultiReader(io.LimitReader(brw.Reader, int64(n)), c)
	}
	splice(c, from, up)
}

// proxyError answers a request whose destination could not be reached.
func proxyError(w http.ResponseWriter, err error) {
	if errors.Is(err, errLocalDestination) {
		http.Error(w, "veil: "+errLocalDestination.Error(), http.StatusForbidden)
		return
	}
	http.Error(w, "veil: the destination could not be reached through the tunnel", http.StatusBadGateway)
}
