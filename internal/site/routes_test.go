package site_test

import (
	"slices"
	"strings"
	"testing"

	"veil/internal/site"
	"veil/internal/site/sitetest"
)

// TestRoutesInOnePlace: routes.go is the only file of the package that
// registers routes.
func TestRoutesInOnePlace(t *testing.T) {
	sitetest.RoutesOnlyIn(t, ".", "routes.go")
}

// TestRoutes: the site's list holds every page of the user-facing
// contract (DESIGN.md §3) that is the site's, each once, and no route of
// the API's.
func TestRoutes(t *testing.T) {
	var got sitetest.Patterns
	(&site.Site{}).Register(&got)
	seen := map[string]bool{}
	for _, p := range got {
		if seen[p] {
			t.Errorf("%s registered twice", p)
		}
		seen[p] = true
		if _, path, _ := strings.Cut(p, " "); path == "/api" || strings.HasPrefix(path, "/api/") {
			t.Errorf("the site registers the API's %s", p)
		}
	}
	for _, path := range []string{"/servers", "/account", "/privacy", "/privacy/versions", "/pricing", "/download",
		"/vpn", "/help", "/help/{slug}", "/blog", "/blog/{slug}", "/blog/feed.atom", "/terms", "/refund",
		"/apps-privacy", "/contacts", "/cookies", "/affiliate", "/r/{code}", "/signup", "/support"} {
		if !slices.Contains(got, "GET "+path) {
			t.Errorf("the site's routes lack GET %s", path)
		}
	}
}
