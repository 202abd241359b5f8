package web

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"veil/internal/apitypes"
	"veil/internal/i18n"
	"veil/internal/i18n/i18ntest"
)

// notYetTranslated are the page templates whose text is still written in
// them in English. Every other template must take all its text from the
// catalogues; this list only shrinks.
var notYetTranslated = map[string]bool{}

func TestLanguageFromPathAndHeader(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /servers", func(w http.ResponseWriter, r *http.Request) {
		Render(w, r, "servers.html", Page{Title: "title.servers", Data: []apitypes.Server{{Name: "g1", Location: "de-fra", Online: true}}})
	})
	h := Localize(WithNotFound(mux))
	get := func(path, accept string) (*httptest.ResponseRecorder, string) {
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("Accept", "text/html")
		if accept != "" {
			r.Header.Set("Accept-Language", accept)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec, rec.Body.String()
	}
	tests := []struct {
		path, accept string
		want         []string
	}{
		{"/servers", "", []string{`<html lang="en">`, "<title>Servers · Veil</title>", `href="/ping"`, "1 gateway", ">online<"}},
		{"/de/servers", "", []string{`<html lang="de">`, "<title>Server · Veil</title>", `href="/de/ping"`, `href="/de"`, "1 Gateway", `aria-current="page">Server<`}},
		{"/servers", "ru-RU,ru;q=0.9", []string{`<html lang="ru">`, "Серверы", `href="/ping"`, "1 шлюз", "работает"}},
		{"/zh/servers", "ru", []string{`<html lang="zh-Hans">`, "服务器", `href="/zh/ping"`}},
		{"/en/servers", "de", []string{`<html lang="en">`, "<title>Servers · Veil</title>", `href="/en/ping"`}},
		{"/tr/no-such-page", "", []string{`<html lang="tr">`, "Sayfa bulunamadı", "Bu adreste bir sayfa yok"}},
	}
	for _, tt := range tests {
		rec, body := get(tt.path, tt.accept)
		for _, w := range tt.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s (Accept-Language %q) lacks %q", tt.path, tt.accept, w)
			}
		}
		for _, l := range i18n.Langs {
			if !strings.Contains(body, `hreflang="`+l.HTML+`"`) {
				t.Errorf("%s lacks the %s alternate", tt.path, l.Code)
			}
		}
		if !strings.Contains(body, `hreflang="x-default" href="/servers"`) && strings.HasSuffix(tt.path, "servers") {
			t.Errorf("%s: x-default is not the unprefixed page", tt.path)
		}
		vary := rec.Header().Get("Vary")
		if _, _, prefixed := i18n.FromPath(tt.path); prefixed == strings.Contains(vary, "Accept-Language") {
			t.Errorf("%s: Vary %q", tt.path, vary)
		}
	}
}

// TestTemplatesUseTheCatalogue fails when a template names a message the
// catalogues lack, or (for translated templates) holds text of its own.
func TestTemplatesUseTheCatalogue(t *testing.T) {
	i18ntest.CheckTemplates(t, templateFS, "templates/*.html", notYetTranslated)
	for _, item := range Nav {
		if !i18n.Has(item.Label) {
			t.Errorf("navigation label %q is in no catalogue", item.Label)
		}
	}
}

// TestPageTitlesAreMessages fails when a handler anywhere in the module
// gives a page a title that is not a message id.
func TestPageTitlesAreMessages(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	err := filepath.WalkDir(filepath.Join(root, "internal"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, p, src, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			kv, ok := n.(*ast.KeyValueExpr)
			if !ok {
				return true
			}
			if k, ok := kv.Key.(*ast.Ident); !ok || k.Name != "Title" {
				return true
			}
			if lit, ok := kv.Value.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				id, _ := strconv.Unquote(lit.Value)
				if !i18n.Has(id) {
					t.Errorf("%s: page title %q is not a message id", fset.Position(lit.Pos()), id)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
