package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func TestExecuteOtherPackagePage(t *testing.T) {
	fsys := fstest.MapFS{"account.html": {Data: []byte(`{{define "content"}}<p id="x">{{.Data}}</p>{{end}}`)}}
	tmpl, err := Parse(fsys, "account.html")
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	Execute(rec, httptest.NewRequest("GET", "/account", nil), tmpl, Page{
		Title: "Account", Data: "<hello>", Credits: []Credit{{"By DB-IP", "https://db-ip.com/"}}, ImgSrc: []string{"http://*.leak.test"},
	})
	body := rec.Body.String()
	for _, want := range []string{
		"<title>Account · Veil</title>", `<p id="x">&lt;hello&gt;</p>`, `href="/account" aria-current="page"`,
		`href="/privacy"`, `href="/servers"`, `href="/dnsleak"`, `href="/support"`, "By DB-IP",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	csp := rec.Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "img-src 'self' data: http://*.leak.test") {
		t.Errorf("CSP %q", csp)
	}
}

func TestRenderUnknownPage(t *testing.T) {
	rec := httptest.NewRecorder()
	Render(rec, httptest.NewRequest("GET", "/", nil), "nosuch.html", Page{})
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("code %d", rec.Code)
	}
}

func TestStatic(t *testing.T) {
	mux := http.NewServeMux()
	Register(mux)
	h := WithNotFound(mux)
	for _, p := range []string{"/static/veil.css", "/static/myip.js", "/static/leak.js", "/static/dnsleak.js"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
		if rec.Code != 200 || rec.Body.Len() == 0 {
			t.Errorf("%s: %d", p, rec.Code)
		}
	}
	// No listing, no 500 for a name that is not UTF-8, no file that is
	// not there.
	for _, p := range []string{"/static/", "/static/%ff", "/static/nosuch.js", "/static/veil.css/"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
		if rec.Code != http.StatusNotFound || strings.Contains(rec.Body.String(), "veil.css") {
			t.Errorf("%s: %d %q, want 404", p, rec.Code, rec.Body)
		}
	}
}

// TestNotFound: a path with no route gets the site's 404 page in a
// browser, the API's JSON error under /api/, plain text otherwise; a
// known path with another method keeps its 405, a route's own 404 its
// text.
func TestNotFound(t *testing.T) {
	mux := http.NewServeMux()
	Register(mux)
	mux.HandleFunc("GET /page", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "page") })
	mux.HandleFunc("GET /api/v1/thing/{id}", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"no such thing"}`, http.StatusNotFound)
	})
	h := WithNotFound(mux)
	tests := []struct {
		method, path, accept string
		code                 int
		ctype, body          string
	}{
		{"GET", "/nosuch", "text/html,application/xhtml+xml,*/*;q=0.8", 404, "text/html; charset=utf-8", "<title>Page not found · Veil</title>"},
		{"GET", "/nosuch", "*/*", 404, "text/plain; charset=utf-8", "not found"},
		{"GET", "/api/v1/nosuch", "text/html", 404, "application/json", `"error"`},
		{"POST", "/api/v1/nosuch", "", 404, "application/json", `"error"`},
		{"GET", "/api/v1/thing/7", "", 404, "text/plain; charset=utf-8", "no such thing"},
		{"POST", "/page", "text/html", 405, "text/plain; charset=utf-8", "Method Not Allowed"},
		{"GET", "/page", "text/html", 200, "", "page"},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(tt.method, tt.path, nil)
		req.Header.Set("Accept", tt.accept)
		h.ServeHTTP(rec, req)
		if rec.Code != tt.code || (tt.ctype != "" && rec.Header().Get("Content-Type") != tt.ctype) || !strings.Contains(rec.Body.String(), tt.body) {
			t.Errorf("%s %s (Accept %q): %d %q %q; want %d %q with %q", tt.method, tt.path, tt.accept, rec.Code,
				rec.Header().Get("Content-Type"), rec.Body, tt.code, tt.ctype, tt.body)
		}
		if strings.Contains(rec.Body.String(), "404 page not found") {
			t.Errorf("%s %s: Go's bare 404 text", tt.method, tt.path)
		}
	}
}
