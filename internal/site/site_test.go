package site

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"veil/internal/i18n/i18ntest"
	"veil/internal/web"
)

func TestTemplatesTranslated(t *testing.T) {
	i18ntest.CheckTemplates(t, templateFS, "templates/*.html", nil)
}

func serve(s *Site, path, accept string) string {
	mux := http.NewServeMux()
	s.Register(mux)
	r := httptest.NewRequest("GET", path, nil)
	r.Header.Set("Accept-Language", accept)
	rec := httptest.NewRecorder()
	web.Localize(mux).ServeHTTP(rec, r)
	return rec.Body.String()
}

func TestCookiesNamesEveryCookie(t *testing.T) {
	s := &Site{SessionTTL: 2 * time.Hour}
	body := serve(s, "/cookies", "")
	for _, want := range []string{"veil_session", "veil_csrf", "at most 2 hours", "no tracking"} {
		if !strings.Contains(body, want) {
			t.Errorf("cookie notice lacks %q", want)
		}
	}
	if de := serve(s, "/de/cookies", ""); !strings.Contains(de, "höchstens 2 Stunden") {
		t.Error("the German cookie notice lacks the session lifetime")
	}
}

func TestContacts(t *testing.T) {
	s := &Site{Operator: Operator{Name: "Example Networks Ltd", Address: "1 Main St\nSpringfield", Email: "hello@example.net"}}
	body := serve(s, "/contacts", "fr")
	for _, want := range []string{"Example Networks Ltd", "1 Main St\nSpringfield", `href="mailto:hello@example.net"`, "responsable du traitement", `href="/support"`} {
		if !strings.Contains(body, want) {
			t.Errorf("contacts page lacks %q", want)
		}
	}
	if body := serve(&Site{}, "/contacts", ""); !strings.Contains(body, "has not published") {
		t.Error("a contacts page without an operator does not say so")
	}
}
