package site

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"veil/internal/logtest"
)

// A page that fails says so in the visitor's language, and the log line
// names what failed but not the visitor's request.
func TestPageFailInVisitorLanguage(t *testing.T) {
	logs := &logtest.Buffer{}
	s := &Site{log: slog.New(slog.NewTextHandler(logs, nil))}
	r := httptest.NewRequest("GET", "/account", nil)
	r.Header.Set("Accept-Language", "de-CH, en;q=0.5")
	w := httptest.NewRecorder()
	s.pageFail(w, r, "reading devices", errors.New("disk gone"))
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("status %d", w.Code)
	}
	if body := w.Body.String(); !strings.Contains(body, "später") {
		t.Errorf("German visitor got %q", body)
	}
	if got := logs.String(); !strings.Contains(got, "reading devices") || strings.Contains(got, "/account") {
		t.Errorf("log line %q", got)
	}
}
