package ping

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"veil/internal/netguard"
	"veil/internal/tools/outbound"
)

// Handler serves the ping page and API:
//
//	GET /ping[?host=HOST]                 the page: a form, and the result for host
//	GET /api/v1/ping?host=HOST[&count=N]  the result as JSON (N from 1 to 5, default 4)
type Handler struct {
	Pinger *Pinger
	// Quota bounds pings per visitor; nil: 20 per 10 minutes per TCP
	// peer.
	Quota *outbound.Quota
}

// Register mounts the page and the API on mux.
func (h *Handler) Register(mux *http.ServeMux) {
	q := h.Quota
	if q == nil {
		q = outbound.NewQuota(20, 10*time.Minute, nil)
	}
	(&outbound.Tool[Result]{
		Page: "/ping", API: "/api/v1/ping", Param: "host",
		Template: "ping.html", Title: "Ping",
		Check: check, Run: h.run, Quota: q,
	}).Register(mux)
}

// check refuses a malformed host or count.
func check(r *http.Request, host string) error {
	if _, err := CheckHost(host); err != nil {
		return err
	}
	_, err := count(r)
	return err
}

// count is the request's count parameter, 4 when there is none.
func count(r *http.Request) (int, error) {
	s := r.URL.Query().Get("count")
	if s == "" {
		return 4, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxCount {
		return 0, errors.New("count must be from 1 to " + strconv.Itoa(MaxCount))
	}
	return n, nil
}

func (h *Handler) run(r *http.Request, host string) (Result, int, error) {
	n, _ := count(r) // check has refused a bad one
	res, err := h.Pinger.Ping(r.Context(), host, n)
	switch {
	case errors.Is(err, netguard.ErrDenied):
		return res, http.StatusForbidden, errors.New("that address is not pinged from here (a private, local or reserved range)")
	case errors.Is(err, ErrUnavailable):
		return res, http.StatusServiceUnavailable, err
	case err != nil:
		return res, http.StatusBadGateway, err
	}
	return res, http.StatusOK, nil
}
