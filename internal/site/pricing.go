package site

import (
	"net/http"

	"veil/internal/web"
)

// pricingPage shows the products, the trial and the free plan, as
// GET /api/v1/plans tells them.
func (s *Site) pricingPage(w http.ResponseWriter, r *http.Request) {
	web.Render(w, r, "pricing.html", web.Page{Title: "title.pricing", Data: s.API.Plans()})
}
