package site

import (
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"veil/internal/i18n"
	"veil/internal/i18n/i18ntest"
	"veil/internal/privacy"
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
	s := &Site{Config: Config{SessionTTL: 2 * time.Hour}}
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
	s := &Site{Config: Config{Operator: Operator{Name: "Example Networks Ltd", Address: "1 Main St\nSpringfield", Email: "hello@example.net"}}}
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

func newSite(t *testing.T, dir string) *Site {
	t.Helper()
	s, err := New(Config{ProseDir: dir, PublicURL: "https://vpn.example"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestProsePages(t *testing.T) {
	s := newSite(t, "")
	for path, want := range map[string]string{
		"/terms":                "<h1>Terms of use</h1>",
		"/refund":               "within 30 days",
		"/vpn":                  "WireGuard",
		"/de/vpn":               "Keine Protokolle, belegt",
		"/blog":                 "The site now speaks seven languages",
		"/blog/seven-languages": `<time datetime="2026-12-02">`,
		"/de/terms":             "<h1>Nutzungsbedingungen</h1>",
	} {
		if body := serve(s, path, ""); !strings.Contains(body, want) {
			t.Errorf("%s lacks %q", path, want)
		}
	}
	if body := serve(s, "/terms", ""); strings.Contains(body, `class="notice"`) {
		t.Error("the English terms say they fell back to English")
	}
	for _, path := range []string{"/help/no-such-guide", "/blog/2026-12-02-seven-languages"} {
		mux := http.NewServeMux()
		s.Register(mux)
		rec := httptest.NewRecorder()
		web.Localize(mux).ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, rec.Code)
		}
	}
}

func TestOperatorPagesReplaceBuiltIn(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "help"), 0o755)
	os.WriteFile(filepath.Join(dir, "terms.de.md"), []byte("# Nutzungsbedingungen\n\nDie Bedingungen des Betreibers. <script>alert(1)</script>\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "help", "router.en.md"), []byte("# Routers\n\nSet up a router.\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "help", "extra.en.md"), []byte("# Extra\n\nOnly in English.\n"), 0o644)
	s := newSite(t, dir)
	de := serve(s, "/de/terms", "")
	if !strings.Contains(de, "Die Bedingungen des Betreibers.") || strings.Contains(de, "noch nicht") {
		t.Error("the operator's German terms are not shown as German")
	}
	if strings.Contains(de, "<script>alert") {
		t.Error("raw HTML in an operator's page reached the site")
	}
	if de := serve(s, "/de/help/extra", ""); !strings.Contains(de, "noch nicht ins Deutsche übersetzt") || !strings.Contains(de, "Only in English.") {
		t.Error("a page only in English is not shown in English, saying so, in German")
	}
	if en := serve(s, "/terms", ""); !strings.Contains(en, "Terms of use") {
		t.Error("the built-in English terms went")
	}
	if h := serve(s, "/help", ""); !strings.Contains(h, `href="/help/router"`) || !strings.Contains(h, "Set up a router.") {
		t.Error("the operator's guide is not listed")
	}
}

func TestBadOperatorPageStopsStartup(t *testing.T) {
	for name, content := range map[string]string{
		"terms.xx.md":       "# T\n",
		"terms.md":          "# T\n",
		"terms.en.md":       "no title line\n",
		"blog/hello.en.md":  "# Hello\n",
		"other/terms.en.md": "# T\n",
	} {
		dir := t.TempDir()
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644)
		_, err := New(Config{ProseDir: dir})
		if err == nil || !strings.Contains(err.Error(), filepath.Base(name)) {
			t.Errorf("%s: error %v, want one naming the file", name, err)
		}
	}
}

func TestFeed(t *testing.T) {
	s := newSite(t, "")
	mux := http.NewServeMux()
	s.Register(mux)
	for _, path := range []string{"/blog/feed.atom", "/ru/blog/feed.atom"} {
		rec := httptest.NewRecorder()
		web.Localize(mux).ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		var f struct {
			XMLName xml.Name
			Lang    string `xml:"lang,attr"`
			ID      string `xml:"id"`
			Entries []struct {
				ID      string `xml:"id"`
				Title   string `xml:"title"`
				Updated string `xml:"updated"`
				Content string `xml:"content"`
			} `xml:"entry"`
		}
		if err := xml.Unmarshal(rec.Body.Bytes(), &f); err != nil {
			t.Fatalf("%s: %v\n%s", path, err, rec.Body)
		}
		if f.XMLName.Space != "http://www.w3.org/2005/Atom" || f.XMLName.Local != "feed" || len(f.Entries) == 0 {
			t.Fatalf("%s: not an Atom feed with entries: %+v", path, f)
		}
		e := f.Entries[0]
		if !strings.HasPrefix(e.ID, "https://vpn.example/") || e.Updated != "2026-12-02T00:00:00Z" || !strings.Contains(e.Content, "<p>") {
			t.Errorf("%s: entry %+v", path, e)
		}
		if path == "/ru/blog/feed.atom" && (f.Lang != "ru" || !strings.HasPrefix(f.ID, "https://vpn.example/ru/")) {
			t.Errorf("the Russian feed: lang %q id %q", f.Lang, f.ID)
		}
	}
}

func TestAppsPrivacyFromTheDeclaration(t *testing.T) {
	for _, s := range privacy.Sent {
		for _, id := range []string{s.What, s.When, "apps.app." + string(s.App), "apps.to." + s.To} {
			if !i18n.Has(id) {
				t.Errorf("apps' privacy policy: message %q is in no catalogue", id)
			}
		}
	}
	body := serve(newSite(t, ""), "/apps-privacy", "")
	for _, want := range []string{"The veil command", "official WireGuard apps", `href="/privacy#devices"`, "used for the answer, then forgotten", "WireGuard public key"} {
		if !strings.Contains(body, want) {
			t.Errorf("apps' privacy policy lacks %q", want)
		}
	}
}
