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
	"text/template/parse"
	"unicode"

	"golang.org/x/net/html"

	"veil/internal/apitypes"
	"veil/internal/i18n"
)

// notYetTranslated are the page templates whose text is still written in
// them in English. Every other template must take all its text from the
// catalogues; this list only shrinks.
var notYetTranslated = map[string]bool{
	"account.html": true, "dnsleak.html": true, "myip.html": true, "ping.html": true,
	"privacy.html": true, "privacy_versions.html": true, "proxy.html": true,
	"recover.html": true, "speedtest.html": true, "support.html": true,
	"unsubscribe.html": true, "whois.html": true,
}

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

// templateIDs walks a template's tree for the message ids it names
// literally ({{$.T "id"}}, {{$.N "id" n}}, {{$.Code "id" …}}) and returns
// its HTML with every action replaced by NUL.
func templateIDs(t *testing.T, name, text string) (ids []string, markup string) {
	t.Helper()
	trees := map[string]*parse.Tree{}
	tr := parse.New(name)
	tr.Mode = parse.SkipFuncCheck
	if _, err := tr.Parse(text, "", "", trees); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var b strings.Builder
	var walk func(n parse.Node)
	walk = func(n parse.Node) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n != nil {
				for _, c := range n.Nodes {
					walk(c)
				}
			}
		case *parse.TextNode:
			b.Write(n.Text)
		case *parse.ActionNode:
			b.WriteByte(0)
			for _, cmd := range n.Pipe.Cmds {
				if len(cmd.Args) < 2 {
					continue
				}
				var field []string
				switch f := cmd.Args[0].(type) {
				case *parse.FieldNode:
					field = f.Ident
				case *parse.VariableNode:
					field = f.Ident[1:]
				}
				if len(field) == 1 && (field[0] == "T" || field[0] == "N" || field[0] == "Code") {
					if s, ok := cmd.Args[1].(*parse.StringNode); ok {
						ids = append(ids, s.Text)
					}
				}
			}
		case *parse.IfNode:
			walk(n.List)
			walk(n.ElseList)
		case *parse.RangeNode:
			walk(n.List)
			walk(n.ElseList)
		case *parse.WithNode:
			walk(n.List)
			walk(n.ElseList)
		case *parse.TemplateNode:
			b.WriteByte(0)
		}
	}
	for _, tree := range trees {
		walk(tree.Root)
		b.WriteByte('\n')
	}
	return ids, b.String()
}

// translatable are the attributes a visitor reads or hears.
var translatable = map[string]bool{"title": true, "alt": true, "placeholder": true, "aria-label": true, "value": true, "data-label": true}

// literalText returns the words of markup a visitor would see that are
// not from a message: text outside <code>, <kbd>, <script> and <style>,
// and translatable attributes. Only the brand name may stand in a
// template.
func literalText(markup string) []string {
	var out []string
	z := html.NewTokenizer(strings.NewReader(markup))
	skip := 0
	hasLetters := func(s string) bool {
		s = strings.ReplaceAll(s, "Veil", "")
		return strings.IndexFunc(s, unicode.IsLetter) >= 0
	}
	for {
		switch z.Next() {
		case html.ErrorToken:
			return out
		case html.TextToken:
			if s := strings.TrimSpace(strings.ReplaceAll(string(z.Text()), "\x00", " ")); skip == 0 && hasLetters(s) {
				out = append(out, s)
			}
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			tok := z.Token()
			switch tok.Data {
			case "code", "kbd", "script", "style", "pre":
				if tok.Type == html.StartTagToken {
					skip++
				} else if tok.Type == html.EndTagToken && skip > 0 {
					skip--
				}
			}
			for _, a := range tok.Attr {
				if translatable[a.Key] && hasLetters(strings.ReplaceAll(a.Val, "\x00", " ")) {
					out = append(out, a.Key+"="+strconv.Quote(a.Val))
				}
			}
		}
	}
}

// TestTemplatesUseTheCatalogue fails when a template names a message the
// English catalogue lacks, or (for translated templates) holds text of
// its own.
func TestTemplatesUseTheCatalogue(t *testing.T) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range names {
		b, err := fs.ReadFile(templateFS, p)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(p)
		ids, markup := templateIDs(t, name, string(b))
		for _, id := range ids {
			if !i18n.Has(id) {
				t.Errorf("%s: message %q is in no catalogue", name, id)
			}
		}
		lit := literalText(markup)
		switch {
		case notYetTranslated[name] && len(lit) == 0:
			t.Errorf("%s holds no text of its own: take it off notYetTranslated", name)
		case !notYetTranslated[name]:
			for _, s := range lit {
				t.Errorf("%s: text outside the catalogue: %q", name, s)
			}
		}
	}
	for _, item := range Nav {
		if !i18n.Has(item.Label) {
			t.Errorf("navigation label %q is in no catalogue", item.Label)
		}
	}
}

func TestLiteralTextFound(t *testing.T) {
	_, markup := templateIDs(t, "x", `{{define "content"}}<p>{{$.T "a"}}</p><p title="Hello">Some words {{.X}}</p><code>veil connect</code><p>{{.Y}} · 42 %</p>{{end}}`)
	got := literalText(markup)
	if len(got) != 2 || !strings.HasPrefix(got[0], "title=") || !strings.Contains(got[1], "Some words") {
		t.Errorf("literal text found: %q", got)
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
