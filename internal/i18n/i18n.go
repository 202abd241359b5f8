// Package i18n holds the site's languages and their message catalogues.
//
// Every text the site shows is a message of an English catalogue
// (catalog/AREA.en.toml), translated in catalog/AREA.LANG.toml for each
// of Langs, with CLDR plural forms where a
// message counts something. Messages are looked up with go-i18n; the
// visitor's language comes from the path (/de/…) or from Accept-Language,
// matched with golang.org/x/text/language.
//
//	l := i18n.For("de")
//	l.T("nav.myip")                    // "Meine IP"
//	l.N("devices.count", 3)            // "3 Geräte"
//	l.T("greeting", "Name", "Veil")    // key/value pairs for the message
package i18n

import (
	"embed"
	"errors"
	"fmt"
	"html"
	"html/template"
	"io/fs"
	"regexp"
	"strings"

	"github.com/nicksnyder/go-i18n/v2/i18n"
	"github.com/pelletier/go-toml/v2"
	"golang.org/x/text/language"
)

// Lang is one language of the site.
type Lang struct {
	// Code is the path prefix and the catalogue's name: "de".
	Code string
	// HTML is the value of <html lang> and hreflang: "zh-Hans".
	HTML string
	// Name is the language's name in itself, for the switcher.
	Name string
}

// Langs are the site's languages; the first, English, is the default and
// is served without a prefix.
var Langs = []Lang{
	{"en", "en", "English"},
	{"ru", "ru", "Русский"},
	{"de", "de", "Deutsch"},
	{"fr", "fr", "Français"},
	{"es", "es", "Español"},
	{"tr", "tr", "Türkçe"},
	{"zh", "zh-Hans", "中文"},
}

// Default is the language of a visitor who states none the site has.
const Default = "en"

//go:embed catalog/*.toml
var catalogFS embed.FS

var (
	bundle     = i18n.NewBundle(language.English)
	localizers = map[string]*Localizer{}
	matcher    language.Matcher
	// messages holds each language's parsed catalogue, for the tests.
	messages = map[string]map[string]*i18n.Message{}
)

func init() {
	bundle.RegisterUnmarshalFunc("toml", toml.Unmarshal)
	files, err := fs.Glob(catalogFS, "catalog/*.toml")
	if err != nil {
		panic(err)
	}
	for _, l := range Langs {
		messages[l.Code] = map[string]*i18n.Message{}
	}
	// A catalogue is AREA.LANG.toml: each part of the site keeps its own
	// messages, in one file per language.
	for _, name := range files {
		f, err := bundle.LoadMessageFileFS(catalogFS, name)
		if err != nil {
			panic(fmt.Sprintf("i18n: catalogue %s: %v", name, err))
		}
		m, ok := messages[f.Tag.String()]
		if !ok {
			panic(fmt.Sprintf("i18n: catalogue %s is in a language the site does not have", name))
		}
		for _, msg := range f.Messages {
			if _, dup := m[msg.ID]; dup {
				panic(fmt.Sprintf("i18n: catalogue %s: %q is also in another catalogue", name, msg.ID))
			}
			m[msg.ID] = msg
		}
	}
	tags := make([]language.Tag, len(Langs))
	for i, l := range Langs {
		localizers[l.Code] = &Localizer{Lang: l, loc: i18n.NewLocalizer(bundle, l.Code)}
		tags[i] = language.MustParse(l.Code)
	}
	matcher = language.NewMatcher(tags)
}

// Localizer gives the messages of one language.
type Localizer struct {
	Lang Lang
	loc  *i18n.Localizer
}

// For returns the localizer of code, or of the default language when the
// site has no such language.
func For(code string) *Localizer {
	if l, ok := localizers[code]; ok {
		return l
	}
	return localizers[Default]
}

// T is the message id, its {{.Key}} placeholders filled from the
// key/value pairs kv. A message the catalogue lacks shows as its id, so
// that the tests and a reader both see what is missing.
func (l *Localizer) T(id string, kv ...any) string {
	return l.localize(id, nil, kv)
}

// N is the message id in the plural form for count (also {{.Count}}).
func (l *Localizer) N(id string, count int, kv ...any) string {
	return l.localize(id, count, append(kv, "Count", count))
}

func (l *Localizer) localize(id string, count any, kv []any) string {
	var data map[string]any
	if len(kv) > 0 {
		data = make(map[string]any, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			if k, ok := kv[i].(string); ok {
				data[k] = kv[i+1]
			}
		}
	}
	s, err := l.loc.Localize(&i18n.LocalizeConfig{MessageID: id, TemplateData: data, PluralCount: count})
	if err != nil || s == "" {
		return id
	}
	return s
}

// Match returns the code of the site's language that best suits an
// Accept-Language header; the default when nothing matches.
func Match(accept string) string {
	if accept == "" {
		return Default
	}
	tags, _, err := language.ParseAcceptLanguage(accept)
	if err != nil || len(tags) == 0 {
		return Default
	}
	_, i, conf := matcher.Match(tags...)
	if conf == language.No {
		return Default
	}
	return Langs[i].Code
}

// FromPath splits a language prefix off an URL path: "/de/ping" is
// ("de", "/ping", true) and "/de" is ("de", "/", true). English has no
// prefix of its own in links, but /en/… is understood, so that a visitor
// whose browser asks for another language can still choose English.
func FromPath(p string) (code, rest string, ok bool) {
	if len(p) < 3 || p[0] != '/' {
		return "", p, false
	}
	seg, tail, _ := strings.Cut(p[1:], "/")
	if _, known := localizers[seg]; !known {
		return "", p, false
	}
	return seg, "/" + tail, true
}

// Known is the code of the site's language tag names, given as its code
// ("de") or its <html lang> ("zh-Hans"), and "" for any other tag: what
// may be kept as an account's language is one of Langs and nothing else.
func Known(tag string) string {
	for _, l := range Langs {
		if tag == l.Code || tag == l.HTML {
			return l.Code
		}
	}
	return ""
}

// Prefix is the path prefix of code's pages: "" for the default
// language, "/de" for German.
func Prefix(code string) string {
	if code == Default {
		return ""
	}
	return "/" + code
}

// Code is the message id as HTML, each value of kv shown as code
// (<code>veil connect</code>): the message and the values are escaped,
// so neither a translation nor a value can add markup.
func (l *Localizer) Code(id string, kv ...any) template.HTML {
	marked := make([]any, len(kv))
	var values []string
	for i := range kv {
		marked[i] = kv[i]
		if i%2 == 1 {
			marked[i] = fmt.Sprintf("\x00%d\x00", len(values))
			values = append(values, fmt.Sprint(kv[i]))
		}
	}
	s := html.EscapeString(l.localize(id, nil, marked))
	for i, v := range values {
		s = strings.ReplaceAll(s, fmt.Sprintf("\x00%d\x00", i), "<code>"+html.EscapeString(v)+"</code>")
	}
	return template.HTML(s)
}

// Rich is Code for instructions: besides {{.Key}} values shown as code,
// the message may hold *words* (shown emphasised, for a label on a
// screen) and [words](Key), a link to the value of Key. The message is
// escaped first, and a link's target comes from kv, never from the
// catalogue, so a translation adds no markup but these.
func (l *Localizer) Rich(id string, kv ...any) template.HTML {
	hrefs := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		if k, ok := kv[i].(string); ok {
			hrefs[k] = fmt.Sprint(kv[i+1])
		}
	}
	s := string(l.Code(id, kv...))
	s = richLink.ReplaceAllStringFunc(s, func(m string) string {
		sub := richLink.FindStringSubmatch(m)
		href, ok := hrefs[sub[2]]
		if !ok {
			return m
		}
		rel := ""
		if strings.HasPrefix(href, "https://") || strings.HasPrefix(href, "http://") {
			rel = ` rel="noopener"`
		}
		return `<a href="` + html.EscapeString(href) + `"` + rel + `>` + sub[1] + "</a>"
	})
	return template.HTML(richEm.ReplaceAllString(s, "<em>$1</em>"))
}

var (
	richLink = regexp.MustCompile(`\[([^\]]+)\]\(([A-Za-z0-9]+)\)`)
	richEm   = regexp.MustCompile(`\*([^*<>]+)\*`)
)

// Has reports whether the default catalogue holds id.
func Has(id string) bool {
	_, ok := messages[Default][id]
	return ok
}

// Error is an error whose text is a message, for what a handler finds
// before it knows the visitor's language (a refused question, a far end
// that did not answer). Error() is the English text, which the JSON API
// and the logs keep; a page shows it in the visitor's language with
// Localizer.Err.
type Error struct {
	ID string
	// Args are the message's key/value pairs.
	Args []any
	// Err is the cause, if any (errors.Is and As see it).
	Err error
}

// NewError is the error of message id with its key/value pairs.
func NewError(id string, kv ...any) *Error { return &Error{ID: id, Args: kv} }

// Wrap is NewError with a cause.
func Wrap(err error, id string, kv ...any) *Error { return &Error{ID: id, Args: kv, Err: err} }

func (e *Error) Error() string { return For(Default).T(e.ID, e.Args...) }
func (e *Error) Unwrap() error { return e.Err }

// Err is err as the visitor reads it: an Error's message in l's language,
// else err's own text. A nil err is "".
func (l *Localizer) Err(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return l.T(e.ID, e.Args...)
	}
	return err.Error()
}

// Or is the message id, or fallback when no catalogue holds id: for
// values from elsewhere (an RDAP event's name) that the catalogues
// translate where they know them.
func (l *Localizer) Or(id, fallback string) string {
	if !Has(id) {
		return fallback
	}
	return l.T(id)
}

// Script is every message whose id starts with one of prefixes, in l's
// language, for a page's script (rendered into the page as JSON): a
// message that counts is its plural forms ("one", "few", "other"…), to
// be chosen with Intl.PluralRules; others are their text. Placeholders
// stay as {{.Name}} for the script to fill.
func (l *Localizer) Script(prefixes ...string) map[string]any {
	out := map[string]any{}
	for id, src := range messages[Default] {
		if !hasPrefix(id, prefixes) {
			continue
		}
		msg, ok := messages[l.Lang.Code][id]
		if !ok {
			msg = src
		}
		if src.One == "" {
			out[id] = msg.Other
			continue
		}
		forms := map[string]string{}
		for k, v := range map[string]string{"zero": msg.Zero, "one": msg.One, "two": msg.Two, "few": msg.Few, "many": msg.Many, "other": msg.Other} {
			if v != "" {
				forms[k] = v
			}
		}
		out[id] = forms
	}
	return out
}

func hasPrefix(id string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}
