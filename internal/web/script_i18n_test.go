package web

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"

	"veil/internal/i18n"
)

var (
	scriptPrefixes = regexp.MustCompile(`\{\{\$\.Script((?: "[^"]+")+)\}\}`)
	scriptSrc      = regexp.MustCompile(`<script src="/static/([^"]+\.js)">`)
	// messageID is a string literal in a script that names a message:
	// t("id"), n("id", …), or an id kept in a list.
	messageID = regexp.MustCompile(`"((?:myip|leak|dnsleak|ping|speedtest|whois|proxy|tools)\.[a-z_.]+[a-z_])"`)
	// deduction is a finding of myip.js, whose three messages are
	// myip.s.d.KEY.title, .why and .advice.
	deduction = regexp.MustCompile(`deduct\([^,]+, "([a-z_]+)"`)
)

// TestScriptMessages fails when a page's script names a message that no
// catalogue holds, or that the page does not hand to its script.
func TestScriptMessages(t *testing.T) {
	pages, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, p := range pages {
		b, _ := fs.ReadFile(templateFS, p)
		var prefixes []string
		for _, m := range scriptPrefixes.FindAllStringSubmatch(string(b), -1) {
			for _, q := range strings.Fields(m[1]) {
				prefixes = append(prefixes, strings.Trim(q, `"`))
			}
		}
		for _, m := range scriptSrc.FindAllStringSubmatch(string(b), -1) {
			src, err := fs.ReadFile(staticFS, "static/"+m[1])
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			var ids []string
			for _, id := range messageID.FindAllStringSubmatch(string(src), -1) {
				ids = append(ids, id[1])
			}
			for _, d := range deduction.FindAllStringSubmatch(string(src), -1) {
				for _, part := range []string{"title", "why", "advice"} {
					ids = append(ids, "myip.s.d."+d[1]+"."+part)
				}
			}
			for _, id := range ids {
				checked++
				if !i18n.Has(id) {
					t.Errorf("%s: %s names %q, which is in no catalogue", p, m[1], id)
				}
				if !hasAnyPrefix(id, prefixes) {
					t.Errorf("%s: %s needs %q, but the page hands its script only %q", p, m[1], id, prefixes)
				}
			}
		}
	}
	if checked < 50 {
		t.Errorf("only %d message ids found in the scripts: is the pattern stale?", checked)
	}
}

func hasAnyPrefix(id string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}

// TestScriptCatalogue: the messages a page gives its script are the
// visitor's language's, plural forms and all.
func TestScriptCatalogue(t *testing.T) {
	ru := i18n.For("ru").Script("leak.")
	forms, ok := ru["leak.leak"].(map[string]string)
	if !ok || forms["few"] == "" || forms["many"] == "" || forms["one"] == "" {
		t.Errorf("ru leak.leak: %#v", ru["leak.leak"])
	}
	if got := ru["leak.no_leak"]; got != i18n.For("ru").T("leak.no_leak") || got == i18n.For("en").T("leak.no_leak") {
		t.Errorf("ru leak.no_leak: %q", got)
	}
	if _, ok := ru["myip.s.nothing"]; ok {
		t.Error("Script gave a message outside its prefixes")
	}
}
