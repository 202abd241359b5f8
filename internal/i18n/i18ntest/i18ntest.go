// Package i18ntest checks templates against the catalogues: every
// message a template names exists, and a translated template holds no
// text of its own.
package i18ntest

import (
	"io/fs"
	"path"
	"strconv"
	"strings"
	"testing"
	"text/template/parse"
	"unicode"

	"golang.org/x/net/html"

	"veil/internal/i18n"
)

// CheckTemplates checks every template of fsys matched by pattern. The
// templates named in notYet may still hold English text of their own;
// each must hold some (so that the list only shrinks).
func CheckTemplates(t *testing.T, fsys fs.FS, pattern string, notYet map[string]bool) {
	t.Helper()
	names, err := fs.Glob(fsys, pattern)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatalf("no template matches %s", pattern)
	}
	for _, p := range names {
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			t.Fatal(err)
		}
		name := path.Base(p)
		ids, markup := templateIDs(t, name, string(b))
		for _, id := range ids {
			if !i18n.Has(id) {
				t.Errorf("%s: message %q is in no catalogue", name, id)
			}
		}
		lit := literalText(markup)
		switch {
		case notYet[name] && len(lit) == 0:
			t.Errorf("%s holds no text of its own: take it off the list of templates not yet translated", name)
		case !notYet[name]:
			for _, s := range lit {
				t.Errorf("%s: text outside the catalogue: %q", name, s)
			}
		}
	}
}

// templateIDs walks a template's tree for the message ids it names
// literally ({{$.T "id"}}, {{$.N "id" n}}, {{$.Code "id" …}}, {{$.Rich "id" …}}) and returns
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
				if len(field) == 1 && (field[0] == "T" || field[0] == "N" || field[0] == "Code" || field[0] == "Rich") {
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
				// An option's, a checkbox's, a radio button's and a hidden
				// input's value is what the form sends, not what the
				// visitor reads; a text input's or a button's is shown.
				if a.Key == "value" && sentNotShown(tok) {
					continue
				}
				if translatable[a.Key] && hasLetters(strings.ReplaceAll(a.Val, "\x00", " ")) {
					out = append(out, a.Key+"="+strconv.Quote(a.Val))
				}
			}
		}
	}
}

func sentNotShown(tok html.Token) bool {
	if tok.Data == "option" {
		return true
	}
	if tok.Data != "input" {
		return false
	}
	for _, a := range tok.Attr {
		if a.Key == "type" {
			switch a.Val {
			case "checkbox", "radio", "hidden":
				return true
			}
		}
	}
	return false
}
