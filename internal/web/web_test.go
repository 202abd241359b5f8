package web

import (
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
	for _, p := range []string{"/static/veil.css", "/static/myip.js", "/static/leak.js", "/static/dnsleak.js"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
		if rec.Code != 200 || rec.Body.Len() == 0 {
			t.Errorf("%s: %d", p, rec.Code)
		}
	}
}
