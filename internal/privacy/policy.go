package privacy

import (
	"fmt"
	"strings"
	"time"

	"veil/internal/i18n"
)

// labelKeys are the policy's fixed texts: the message
// privacy.label.KEY of each is Document.Labels[KEY].
var labelKeys = []string{
	"inventory", "intro", "fields", "purpose", "basis", "retention", "storage", "shared", "nobody", "never",
	"erasure", "erasure_now", "erasure_wal", "rights", "rights_text", "controller",
}

// RetentionText describes a rule in words, with the configured periods,
// in English.
func RetentionText(r Rule, p Periods) string { return retentionText(i18n.For(i18n.Default), r, p) }

func retentionText(l *i18n.Localizer, r Rule, p Periods) string {
	id := "privacy.retention." + string(r)
	switch r {
	case RuleUnusedAccount:
		return l.N(id, int(p.UnusedAccount/(24*time.Hour)))
	case RuleLinkExpiry:
		return l.N(id, int(RecoveryLinkTTL/time.Hour))
	case RuleSupport:
		return l.N(id, SupportMonths)
	case RuleOutbox:
		return l.N(id, int(OutboxRetention/(24*time.Hour)))
	case RuleTax:
		return l.N(id, p.TaxYears)
	case RuleCounters:
		return l.N(id, int(CounterRetention/(24*time.Hour)))
	case RulePeerHistory:
		return l.N(id, int(PeerHistory/time.Hour))
	}
	if i18n.Has(id) {
		return l.T(id)
	}
	return "Unknown rule " + string(r)
}

// Controller is who is responsible for the data (GDPR Art. 4(7)): the
// operator, as the configuration names it.
type Controller struct {
	Name    string
	Address string // lines separated by "\n"
	Email   string
}

// Document is a rendered policy, for the HTML page and the published text.
type Document struct {
	// Lang is the language of the document; ProseLang that of the
	// operator's prose, English when the operator gave none in Lang.
	Lang, ProseLang string
	Prose           []Block
	Labels          map[string]string
	// Controller says who the controller is; Address its postal address,
	// one line each, and Email its address.
	Controller Block
	Address    []string
	Email      string
	Sections   []Section
	// Erasure says, in paragraphs, how long erased data can remain.
	Erasure []string
}

// Block is a paragraph or a heading of the operator's prose.
type Block struct {
	Heading bool
	Text    string
}

// Section is one inventory category as the policy shows it.
type Section struct {
	ID, Name, Purpose, LegalBasis, Retention, Storage, Note string
	Fields                                                  []FieldText
	SharedWith                                              []string
}

// FieldText is a stored column and what it holds, in the document's
// language.
type FieldText struct {
	Column, Meaning string
}

// Prose is the operator's text of the policy, per language.
type Prose struct {
	// Text is the English text, the one that is published.
	Text string
	// In holds translations of Text by language code; a language without
	// one shows Text, saying so.
	In map[string]string
}

// DefaultProse is the built-in text of the policy in lang, used when the
// operator gives none.
func DefaultProse(lang string) string { return i18n.For(lang).T("privacy.default_prose") }

// For picks the prose to show in lang, and the language it is in.
func (p Prose) For(lang string) (text, in string) {
	if t, ok := p.In[lang]; ok && lang != i18n.Default {
		return t, lang
	}
	return p.Text, i18n.Default
}

// Render builds the policy in lang (English when the site has no such
// language) from the operator's prose, the controller and the
// inventory. proseLang is the language prose is written in.
func Render(lang, prose, proseLang string, c Controller, p Periods) *Document {
	l := i18n.For(lang)
	lang = l.Lang.Code
	labels := make(map[string]string, len(labelKeys))
	for _, k := range labelKeys {
		labels[k] = l.T("privacy.label." + k)
	}
	backups := l.T("privacy.label.no_backups")
	if p.BackupDays > 0 {
		backups = l.N("privacy.label.backups", p.BackupDays)
	}
	if proseLang == "" {
		proseLang = i18n.Default
	}
	d := &Document{Lang: lang, ProseLang: proseLang, Labels: labels, Prose: parseProse(prose),
		Erasure: []string{labels["erasure_now"], labels["erasure_wal"], backups}}
	d.Controller = Block{Text: l.T("privacy.controller.unnamed")}
	if c.Name != "" {
		d.Controller.Text = l.T("privacy.controller.named", "Name", c.Name)
	}
	for _, line := range strings.Split(c.Address, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			d.Address = append(d.Address, line)
		}
	}
	d.Email = c.Email
	for _, c := range Inventory {
		s := Section{
			ID: c.ID, Name: l.T(c.Name), Purpose: l.T(c.Purpose), LegalBasis: l.T(c.LegalBasis),
			Retention: retentionText(l, c.Retention, p), Storage: l.T(c.Storage),
		}
		if c.Note != "" {
			s.Note = l.T(c.Note)
		}
		for _, f := range c.Fields {
			s.Fields = append(s.Fields, FieldText{Column: f.Column, Meaning: l.T(f.Meaning())})
		}
		for _, w := range c.SharedWith {
			s.SharedWith = append(s.SharedWith, l.T(w))
		}
		d.Sections = append(d.Sections, s)
	}
	return d
}

// MessageIDs are the ids of every text the inventory refers to, for the
// test that each is in the catalogues.
func MessageIDs(c Category) []string {
	ids := []string{c.Name, c.Purpose, c.LegalBasis, c.Storage}
	if c.Note != "" {
		ids = append(ids, c.Note)
	}
	ids = append(ids, c.SharedWith...)
	for _, f := range c.Fields {
		ids = append(ids, f.Meaning())
	}
	return ids
}

// parseProse splits the operator's text into paragraphs at blank lines;
// a paragraph starting with "# " is a heading.
func parseProse(s string) []Block {
	var out []Block
	for _, para := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n\n") {
		para = strings.TrimSpace(para)
		if para == "" {
			continue
		}
		if h, ok := strings.CutPrefix(para, "# "); ok {
			out = append(out, Block{Heading: true, Text: strings.TrimSpace(h)})
			continue
		}
		out = append(out, Block{Text: strings.Join(strings.Fields(para), " ")})
	}
	return out
}

// Text is the document as plain text, one statement per line, as stored
// in a published version so that versions can be compared line by line.
func (d *Document) Text() string {
	var b strings.Builder
	for _, bl := range d.Prose {
		if bl.Heading {
			fmt.Fprintf(&b, "# %s\n\n", bl.Text)
		} else {
			fmt.Fprintf(&b, "%s\n\n", bl.Text)
		}
	}
	l := d.Labels
	fmt.Fprintf(&b, "# %s\n\n%s\n", l["controller"], d.Controller.Text)
	for _, a := range d.Address {
		fmt.Fprintf(&b, "%s\n", a)
	}
	if d.Email != "" {
		fmt.Fprintf(&b, "%s\n", i18n.For(d.Lang).T("privacy.controller.email", "Email", d.Email))
	}
	fmt.Fprintf(&b, "\n# %s\n\n%s\n\n%s\n\n", l["inventory"], l["intro"], l["never"])
	for _, s := range d.Sections {
		fmt.Fprintf(&b, "## %s\n\n", s.Name)
		fmt.Fprintf(&b, "%s: %s\n", l["purpose"], s.Purpose)
		fmt.Fprintf(&b, "%s: %s\n", l["basis"], s.LegalBasis)
		fmt.Fprintf(&b, "%s: %s\n", l["retention"], s.Retention)
		fmt.Fprintf(&b, "%s: %s\n", l["storage"], s.Storage)
		shared := l["nobody"]
		if len(s.SharedWith) > 0 {
			shared = strings.Join(s.SharedWith, "; ") + "."
		}
		fmt.Fprintf(&b, "%s: %s\n", l["shared"], shared)
		if s.Note != "" {
			fmt.Fprintf(&b, "%s\n", s.Note)
		}
		for _, f := range s.Fields {
			fmt.Fprintf(&b, "- %s: %s\n", f.Column, f.Meaning)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "# %s\n\n", l["erasure"])
	for _, p := range d.Erasure {
		fmt.Fprintf(&b, "%s\n\n", p)
	}
	fmt.Fprintf(&b, "# %s\n\n%s\n", l["rights"], l["rights_text"])
	return b.String()
}
