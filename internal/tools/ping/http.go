package ping

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"veil/internal/i18n"
	"veil/internal/netguard"
	"veil/internal/tools/outbound"
)

// Handler serves the ping page and API:
//
//	GET /ping[?host=HOST]                 the page: a form, and the result for host
//	GET /api/v1/ping?host=HOST[&count=N]  the result as JSON (N from 1 to 5, default 4)
//	GET /api/v1/ping/stream?host=HOST…    the same as server-sent events, each reply as it comes
//
// Every one also takes proto=icmp|tcp (default icmp) and, for tcp,
// port=N (default 443). The stream's events are "start" (a Result
// without replies), "reply" (a Reply), then "done" (the Result) or
// "error" ({"error": "…"}); a request refused before the start answers
// with its HTTP status and a JSON error, as the API does.
type Handler struct {
	Pinger *Pinger
	// Quota bounds pings per visitor; nil: 20 per 10 minutes per TCP
	// peer.
	Quota *outbound.Quota
}

// Register mounts the page and the API on mux.
func (h *Handler) Register(mux *http.ServeMux) {
	if h.Quota == nil {
		h.Quota = outbound.NewQuota(20, 10*time.Minute, nil)
	}
	(&outbound.Tool[Result]{
		Page: "/ping", API: "/api/v1/ping", Param: "host",
		Template: "ping.html", Title: "title.ping",
		Check: check, Run: h.run, Quota: h.Quota,
	}).Register(mux)
	mux.HandleFunc("GET /api/v1/ping/stream", h.serveStream)
}

// check refuses a malformed host, count, protocol or port.
func check(r *http.Request, host string) error {
	_, err := request(r, host)
	return err
}

// request reads a ping's parameters.
func request(r *http.Request, host string) (Request, error) {
	if _, err := CheckHost(host); err != nil {
		return Request{}, err
	}
	q := r.URL.Query()
	req := Request{Host: host, Count: 4, Proto: ICMP}
	if s := q.Get("count"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxCount {
			return Request{}, i18n.NewError("ping.err.count", "Max", MaxCount)
		}
		req.Count = n
	}
	switch p := Proto(q.Get("proto")); p {
	case "", ICMP, TCP:
		if p != "" {
			req.Proto = p
		}
	default:
		return Request{}, i18n.NewError("ping.err.proto")
	}
	if s := q.Get("port"); s != "" {
		if req.Proto != TCP {
			return Request{}, i18n.NewError("ping.err.port_tcp")
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 65535 {
			return Request{}, ErrPort
		}
		req.Port = n
	}
	return req, nil
}

func (h *Handler) run(r *http.Request, host string) (Result, int, error) {
	req, _ := request(r, host) // check has refused a bad one
	res, err := h.Pinger.Run(r.Context(), req, nil)
	code, err := status(err)
	return res, code, err
}

// status is the HTTP status of a ping's error, and the error as the
// visitor reads it.
func status(err error) (int, error) {
	switch {
	case err == nil:
		return http.StatusOK, nil
	case errors.Is(err, netguard.ErrDenied):
		return http.StatusForbidden, i18n.NewError("ping.err.denied")
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable, err
	}
	return http.StatusBadGateway, err
}

// serveStream pings as the API does, sending each reply as an event as
// soon as it comes. Its errors are English, or in the language lang
// names (the page's script asks for its own: "de", "zh-Hans").
func (h *Handler) serveStream(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Last-Event-ID") != "" {
		// An EventSource reconnecting after the end: that ping is over,
		// and 204 tells it not to try again.
		w.WriteHeader(http.StatusNoContent)
		return
	}
	host := r.URL.Query().Get("host")
	l := i18n.For(i18n.Match(r.URL.Query().Get("lang")))
	fail := func(code int, err error) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]string{"error": l.Err(err)})
	}
	req, err := request(r, host)
	if err != nil {
		fail(http.StatusBadRequest, err)
		return
	}
	done, refusal, err := h.Quota.Begin(r)
	if err != nil {
		fail(refusal, err)
		return
	}
	defer done()
	rc := http.NewResponseController(w)
	started := false
	send := func(event, id string, v any) {
		b, _ := json.Marshal(v)
		if id != "" {
			w.Write([]byte("id: " + id + "\n"))
		}
		w.Write([]byte("event: " + event + "\ndata: "))
		w.Write(b)
		w.Write([]byte("\n\n"))
		rc.Flush()
	}
	start := func(res *Result) {
		if started {
			return
		}
		started = true
		hd := w.Header()
		hd.Set("Content-Type", "text/event-stream")
		hd.Set("Cache-Control", "no-store")
		hd.Set("X-Accel-Buffering", "no") // a reverse proxy must not hold the events back
		w.WriteHeader(http.StatusOK)
		send("start", "", Result{Host: res.Host, Address: res.Address, Proto: res.Proto, Port: res.Port, Note: res.Note})
	}
	res, err := h.Pinger.Run(r.Context(), req, func(res *Result, rep Reply) {
		start(res)
		send("reply", strconv.Itoa(rep.Seq), rep)
	})
	code, err := status(err)
	switch {
	case err != nil && !started:
		fail(code, err)
	case err != nil:
		send("error", "", map[string]string{"error": l.Err(err)})
	default:
		send("done", "", res)
	}
}
