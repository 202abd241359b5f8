package privacy_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"veil/internal/i18n"
	"veil/internal/privacy"
)

// TestInventoryTranslated fails when a category of the inventory refers
// to a text the catalogues lack: a new category or column needs its
// messages in internal/i18n/catalog/privacy.LANG.toml (the i18n tests
// then require them in every language).
func TestInventoryTranslated(t *testing.T) {
	for _, c := range privacy.Inventory {
		for _, id := range privacy.MessageIDs(c) {
			if !i18n.Has(id) {
				t.Errorf("category %s: %q is in no catalogue; add it to internal/i18n/catalog/privacy.*.toml", c.ID, id)
			}
		}
		for i, w := range c.SharedWith {
			if want := fmt.Sprintf("privacy.%s.shared%d", c.ID, i+1); w != want {
				t.Errorf("category %s: recipient %d is %q; name it %q", c.ID, i+1, w, want)
			}
		}
		for _, f := range []struct{ got, want string }{{c.Name, ".name"}, {c.Purpose, ".purpose"}} {
			if f.got != "privacy."+c.ID+f.want {
				t.Errorf("category %s: %q should be %q", c.ID, f.got, "privacy."+c.ID+f.want)
			}
		}
	}
	for _, r := range []privacy.Rule{privacy.RuleUnusedAccount, privacy.RuleWithAccount, privacy.RuleSessionExpiry, privacy.RuleLinkExpiry,
		privacy.RuleSupport, privacy.RuleOutbox, privacy.RuleTax, privacy.RuleCounters, privacy.RulePeerHistory, privacy.RuleOperator, privacy.RuleForever} {
		if !i18n.Has("privacy.retention." + string(r)) {
			t.Errorf("rule %s has no text", r)
		}
	}
}

// TestRenderGerman: the policy rendered in German holds the categories'
// German names and meanings, German retention periods, and the operator
// as controller; no message id shows through in any language.
func TestRenderGerman(t *testing.T) {
	c := privacy.Controller{Name: "Beispiel GmbH", Address: "Hauptstraße 1\n10115 Berlin", Email: "datenschutz@example.org"}
	p := privacy.Periods{UnusedAccount: 30 * 24 * time.Hour, TaxYears: 10, BackupDays: 1}
	doc := privacy.Render("de", privacy.DefaultProse("de"), "de", c, p)
	text := doc.Text()
	for _, want := range []string{
		"## Konto\n", "## Geräte\n", "## Rechnungsdaten\n", "Beispiel GmbH", "Hauptstraße 1\n10115 Berlin\n", "datenschutz@example.org",
		"# Verantwortlicher", "Art. 4 Nr. 7", "10 Jahre", "30 Tage", "6 Monate", "höchstens 1 Tag auf.", "# Ihre Rechte", "# Wer wir sind",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("German policy lacks %q", want)
		}
	}
	for _, en := range []string{"## Account\n", "What we store", "Legal basis", "Who we are"} {
		if strings.Contains(text, en) {
			t.Errorf("German policy holds the English %q", en)
		}
	}
	if doc.Lang != "de" || doc.ProseLang != "de" {
		t.Errorf("languages %q, %q", doc.Lang, doc.ProseLang)
	}
	for _, l := range i18n.Langs {
		text := privacy.Render(l.Code, privacy.DefaultProse(l.Code), l.Code, c, p).Text()
		if strings.Contains(text, "privacy.") {
			i := strings.Index(text, "privacy.")
			t.Errorf("%s: a message id shows through: %q", l.Code, text[i:min(len(text), i+60)])
		}
	}
}

// TestProseFallsBack: an operator's text without a translation shows in
// English, and the document says which language it is in.
func TestProseFallsBack(t *testing.T) {
	pr := privacy.Prose{Text: "# About\n\nEnglish.", In: map[string]string{"fr": "# À propos\n\nFrançais."}}
	if text, in := pr.For("fr"); in != "fr" || !strings.Contains(text, "Français") {
		t.Errorf("fr: %q in %s", text, in)
	}
	if text, in := pr.For("de"); in != "en" || !strings.Contains(text, "English") {
		t.Errorf("de: %q in %s", text, in)
	}
}
