package whois

import (
	"net/http"
	"time"

	"veil/internal/i18n"
	"veil/internal/tools/outbound"
)

// Handler serves the whois page and API:
//
//	GET /whois[?q=QUERY]        the page: a form, and the answers for q
//	GET /api/v1/whois?q=QUERY   the answers as JSON (a Result)
type Handler struct {
	Client *Client
	// Quota bounds lookups per visitor; nil: 30 per 10 minutes per TCP
	// peer.
	Quota *outbound.Quota
}

// Register mounts the page and the API on mux.
func (h *Handler) Register(mux *http.ServeMux) {
	q := h.Quota
	if q == nil {
		q = outbound.NewQuota(30, 10*time.Minute, nil)
	}
	(&outbound.Tool[Result]{
		Page: "/whois", API: "/api/v1/whois", Param: "q",
		Template: "whois.html", Title: "title.whois",
		Check: func(_ *http.Request, q string) error { _, err := Normalize(q); return err },
		Run:   h.run, Quota: q,
	}).Register(mux)
}

func (h *Handler) run(r *http.Request, q string) (Result, int, error) {
	res, err := h.Client.Lookup(r.Context(), q)
	if err != nil {
		return res, http.StatusBadGateway, i18n.Wrap(err, "whois.err.no_answer", "Reason", err.Error())
	}
	return res, http.StatusOK, nil
}
