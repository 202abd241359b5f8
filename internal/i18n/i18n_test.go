package i18n

import (
	"strings"
	"testing"

	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/feature/plural"
	"golang.org/x/text/language"
)

// forms returns the content of each plural form msg gives.
func forms(msg *i18n.Message) map[plural.Form]string {
	return map[plural.Form]string{
		plural.Zero: msg.Zero, plural.One: msg.One, plural.Two: msg.Two,
		plural.Few: msg.Few, plural.Many: msg.Many, plural.Other: msg.Other,
	}
}

// needed is every plural form code's language uses for whole numbers
// and for the compact large numbers French and Spanish treat apart.
func needed(code string) map[plural.Form]bool {
	tag := language.MustParse(code)
	out := map[plural.Form]bool{}
	for n := range 1000 {
		out[plural.Cardinal.MatchPlural(tag, n, 0, 0, 0, 0)] = true
	}
	return out
}

// TestEveryMessageTranslated fails when a language lacks a message of the
// English catalogue, holds one English does not, or lacks a plural form
// its language needs for a message that counts.
func TestEveryMessageTranslated(t *testing.T) {
	en := messages[Default]
	if len(en) == 0 {
		t.Fatal("the English catalogue is empty")
	}
	for _, l := range Langs[1:] {
		cat := messages[l.Code]
		for id, src := range en {
			msg, ok := cat[id]
			if !ok {
				t.Errorf("%s: %q is not translated", l.Code, id)
				continue
			}
			if src.One == "" { // not a counting message
				if msg.Other == "" {
					t.Errorf("%s: %q is empty", l.Code, id)
				}
				continue
			}
			got := forms(msg)
			for f := range needed(l.Code) {
				if got[f] == "" {
					t.Errorf("%s: %q lacks plural form %v", l.Code, id, f)
				}
			}
		}
		for id := range cat {
			if _, ok := en[id]; !ok {
				t.Errorf("%s: %q is in no English catalogue (a stale translation?)", l.Code, id)
			}
		}
	}
}

// TestPlaceholdersKept fails when a translation drops or renames a
// {{.Name}} placeholder of the English message.
func TestPlaceholdersKept(t *testing.T) {
	for id, src := range messages[Default] {
		want := placeholders(src.Other)
		for _, l := range Langs[1:] {
			msg, ok := messages[l.Code][id]
			if !ok {
				continue
			}
			for f, s := range forms(msg) {
				if s == "" {
					continue
				}
				for p := range placeholders(s) {
					if !want[p] {
						t.Errorf("%s: %q (%v) uses %s, which English does not give", l.Code, id, f, p)
					}
				}
			}
			for p := range want {
				if p != "{{.Count}}" && !strings.Contains(msg.Other, p) {
					t.Errorf("%s: %q drops %s", l.Code, id, p)
				}
			}
		}
	}
}

// placeholders are a message's {{.Key}} values and, for Rich, the
// "](Key)" ends of its links.
func placeholders(s string) map[string]bool {
	out := map[string]bool{}
	for _, m := range richLink.FindAllStringSubmatch(s, -1) {
		out["]("+m[2]+")"] = true
	}
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			return out
		}
		j := strings.Index(s[i:], "}}")
		if j < 0 {
			return out
		}
		out[s[i:i+j+2]] = true
		s = s[i+j+2:]
	}
}

func TestPlural(t *testing.T) {
	ru := For("ru")
	for n, want := range map[int]string{1: "1 шлюз", 2: "2 шлюза", 5: "5 шлюзов", 21: "21 шлюз", 112: "112 шлюзов"} {
		if got := ru.N("servers.count", n); got != want {
			t.Errorf("ru %d: %q, want %q", n, got, want)
		}
	}
	if got := For("en").N("servers.count", 1); got != "1 gateway" {
		t.Errorf("en 1: %q", got)
	}
}

func TestMatch(t *testing.T) {
	for accept, want := range map[string]string{
		"":                      "en",
		"de-CH,de;q=0.9":        "de",
		"zh-TW":                 "zh",
		"pt-BR":                 "en",
		"ru-RU,ru;q=0.9,en;q=1": "ru",
		"en-GB,de;q=0.5":        "en",
		"tr":                    "tr",
		"garbage;;;q=x":         "en",
	} {
		if got := Match(accept); got != want {
			t.Errorf("Match(%q) = %q, want %q", accept, got, want)
		}
	}
}

func TestFromPath(t *testing.T) {
	for _, tt := range []struct {
		in, code, rest string
		ok             bool
	}{
		{"/de/ping", "de", "/ping", true},
		{"/de", "de", "/", true},
		{"/de/", "de", "/", true},
		{"/en/account", "en", "/account", true},
		{"/ping", "", "/ping", false},
		{"/dex/ping", "", "/dex/ping", false},
		{"/", "", "/", false},
		{"/r/CODE", "", "/r/CODE", false},
	} {
		code, rest, ok := FromPath(tt.in)
		if code != tt.code || rest != tt.rest || ok != tt.ok {
			t.Errorf("FromPath(%q) = %q %q %v", tt.in, code, rest, ok)
		}
	}
}

func TestCodeEscapes(t *testing.T) {
	got := string(For("en").Code("servers.intro", "Connect", "veil connect <x>", "Export", "a&b"))
	if !strings.Contains(got, "<code>veil connect &lt;x&gt;</code>") || !strings.Contains(got, "<code>a&amp;b</code>") {
		t.Errorf("Code: %s", got)
	}
}

func TestRichMarksOnlyItsOwn(t *testing.T) {
	got := string(For("en").Rich("download.windows.file", "Account", "/de/account?x=\"1\"", "Conf", ".conf", "Cmd", "a<b", "Veil", "veil"))
	want := `On the <a href="/de/account?x=&#34;1&#34;">account page</a>, choose <em>Add a device</em>, pick a location and download the <code>.conf</code> file (or run <code>a&lt;b</code> on a computer where <code>veil</code> is logged in).`
	if got != want {
		t.Errorf("Rich:\n got %s\nwant %s", got, want)
	}
	// A link whose key the template does not give stays as written.
	if got := string(For("en").Rich("download.which.devices")); !strings.Contains(got, "[account page](Account)") || strings.Contains(got, "<a") {
		t.Errorf("Rich without the link's target: %s", got)
	}
}

func TestMissingShowsID(t *testing.T) {
	if got := For("de").T("no.such.message"); got != "no.such.message" {
		t.Errorf("missing message shows %q", got)
	}
	if For("xx").Lang.Code != "en" {
		t.Error("an unknown language is not the default")
	}
}

func TestKnown(t *testing.T) {
	for tag, want := range map[string]string{"de": "de", "zh-Hans": "zh", "zh": "zh", "en": "en", "": "", "pt-BR": "", "DE": "", "de-CH": "", "ru;q=1": ""} {
		if got := Known(tag); got != want {
			t.Errorf("Known(%q) = %q, want %q", tag, got, want)
		}
	}
}
