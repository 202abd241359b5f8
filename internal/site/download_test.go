package site

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"veil/internal/web"
)

func TestDownloads(t *testing.T) {
	dir := t.TempDir()
	const sum = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	os.WriteFile(filepath.Join(dir, "veil-linux-amd64"), []byte("binary"), 0o644)
	os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("no"), 0o644)
	os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(sum+"  veil-linux-amd64\n"+sum+"  ../etc/passwd\n"), 0o644)
	mux := http.NewServeMux()
	(&Site{Config: Config{DownloadsDir: dir}}).Register(mux)
	get := func(path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		return w
	}
	page := get("/download")
	body := page.Body.String()
	if page.Code != 200 {
		t.Fatalf("/download: %d", page.Code)
	}
	for _, want := range []string{`href="/download/veil-linux-amd64"`, sum, `id="openwrt"`, `id="opnsense"`, `id="glinet"`,
		"Block Non-VPN Traffic", "NO_WAN_EGRESS", "Block connections without VPN", "Block untunneled traffic", `id="extension"`, `id="which"`} {
		if !strings.Contains(body, want) {
			t.Errorf("/download lacks %q", want)
		}
	}
	if strings.Contains(body, "passwd") {
		t.Error("/download lists a name that is no release file")
	}
	if w := get("/download/veil-linux-amd64"); w.Code != 200 || w.Body.String() != "binary" {
		t.Errorf("release file: %d %q", w.Code, w.Body.String())
	}
	for _, p := range []string{"/download/secret.txt", "/download/veil-linux-arm64", "/download/..%2fSHA256SUMS"} {
		if w := get(p); w.Code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, w.Code)
		}
	}
	// Without release files the page says how to build them.
	w := httptest.NewRecorder()
	m2 := http.NewServeMux()
	(&Site{}).Register(m2)
	m2.ServeHTTP(w, httptest.NewRequest("GET", "/download", nil))
	if !strings.Contains(w.Body.String(), "make dist") {
		t.Error("without files the page does not point to make dist")
	}
}

// TestDownloadsTranslated reads the page in each language: every message
// is there in that language, the marks of Rich messages became links and
// emphasis, and the account links keep the visitor's language.
func TestDownloadsTranslated(t *testing.T) {
	mux := http.NewServeMux()
	(&Site{}).Register(mux)
	h := web.Localize(mux)
	for path, want := range map[string][]string{
		"/download":    {"Which way suits you", `<a href="/account">account page</a>`, "<em>Add a device</em>"},
		"/ru/download": {"Что вам подходит", `<a href="/ru/account">странице аккаунта</a>`, "<em>Добавить устройство</em>"},
		"/de/download": {"Was zu Ihnen passt", `<a href="/de/account">Kontoseite</a>`, "<em>Gerät hinzufügen</em>"},
		"/fr/download": {"Quelle solution vous convient", `<a href="/fr/account">page du compte</a>`},
		"/es/download": {"Qué opción le conviene", `<a href="/es/account">página de la cuenta</a>`},
		"/tr/download": {"Size hangisi uygun", `<a href="/tr/account">hesap sayfasından</a>`},
		"/zh/download": {"哪种方式适合您", `<a href="/zh/account">账户页面</a>`},
	} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("Accept", "text/html")
		h.ServeHTTP(w, r)
		body := w.Body.String()
		for _, s := range append(want, `href="https://www.wireguard.com/install/" rel="noopener"`, `id="opnsense"`, "<code>NO_WAN_EGRESS</code>") {
			if !strings.Contains(body, s) {
				t.Errorf("%s lacks %q", path, s)
			}
		}
		for _, bad := range []string{"download.", "](", "{{"} {
			if i := strings.Index(body, bad); i >= 0 {
				t.Errorf("%s shows %q: …%s…", path, bad, body[max(0, i-40):min(len(body), i+40)])
			}
		}
	}
}
