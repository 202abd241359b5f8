package i18ntest

import (
	"strings"
	"testing"
)

func TestLiteralTextFound(t *testing.T) {
	_, markup := templateIDs(t, "x", `{{define "content"}}<p>{{$.T "a"}}</p><p title="Hello">Some words {{.X}}</p><code>veil connect</code><p>{{.Y}} · 42 %</p><select><option value="tcp">{{$.T "b"}}</option></select><input type="submit" value="Go"><input type="checkbox" name="confirm" value="yes">{{end}}`)
	got := literalText(markup)
	if len(got) != 3 || got[2] != `value="Go"` || !strings.HasPrefix(got[0], "title=") || !strings.Contains(got[1], "Some words") {
		t.Errorf("literal text found: %q", got)
	}
}
