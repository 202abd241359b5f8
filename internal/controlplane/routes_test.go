package controlplane_test

import (
	"strings"
	"testing"

	"veil/internal/controlplane"
	"veil/internal/site/sitetest"
)

// TestRoutesInOnePlace: routes.go is the only file of the package that
// registers routes.
func TestRoutesInOnePlace(t *testing.T) {
	sitetest.RoutesOnlyIn(t, ".", "routes.go")
}

// TestRoutesAreAPI: every route of the control plane is the JSON API's,
// under /api/v1/, or the health check; the pages are package site's.
func TestRoutesAreAPI(t *testing.T) {
	var got sitetest.Patterns
	controlplane.New(controlplane.Config{}).Register(&got)
	if len(got) < 40 {
		t.Fatalf("only %d routes: %q", len(got), got)
	}
	for _, p := range got {
		if _, path, _ := strings.Cut(p, " "); path != "/healthz" && path != "/generate_204" && !strings.HasPrefix(path, "/api/v1/") {
			t.Errorf("the control plane registers %s, which is no API route", p)
		}
	}
}
