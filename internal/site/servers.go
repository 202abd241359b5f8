package site

import (
	"net/http"

	"veil/internal/web"
)

// serversPage is the public list of gateways, as GET /api/v1/servers
// gives it.
func (s *Site) serversPage(w http.ResponseWriter, r *http.Request) {
	out, err := s.API.Servers(r.Context())
	if err != nil {
		s.log.Error("listing gateways", "err", err)
		http.Error(w, "the server list is unavailable; try again later", http.StatusServiceUnavailable)
		return
	}
	web.Render(w, r, "servers.html", web.Page{Title: "title.servers", Data: out})
}
