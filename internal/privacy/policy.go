package privacy

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Languages are the languages the policy is rendered in, the default
// first. A language is added by adding its labels below; the inventory's
// own texts are English until translated.
var Languages = []string{"en"}

// labels are the policy's fixed texts, per language.
var labels = map[string]map[string]string{
	"en": {
		"inventory":   "What we store",
		"intro":       "This list is generated from the same declaration the software enforces: a test fails the build if the database holds anything not listed here.",
		"fields":      "Data",
		"purpose":     "Why",
		"basis":       "Legal basis",
		"retention":   "How long",
		"storage":     "Where",
		"shared":      "Shared with",
		"nobody":      "Nobody.",
		"never":       "Never stored: your IP address, the DNS names you look up, the sites you visit, or any record of your connections.",
		"erasure":     "When data is erased",
		"erasure_now": "Erasing your account, or the end of a retention period, deletes the data and clears the database files of it at once: SQLite overwrites deleted data with zeros and empties its write-ahead log; PostgreSQL rewrites the tables concerned once no earlier transaction (a backup being taken, for example) still reads them: normally within seconds, otherwise at the next erasure or retention sweep. The gateways drop a removed device at their next synchronisation and never write it to disk.",
		"erasure_wal": "On PostgreSQL, the write-ahead log (its record of recent changes, kept for crash recovery) still holds deleted data until its files are reused for new changes: within minutes on a busy service; on a quiet one, only once as much new change has been written as the log keeps (80 MB to 1 GB by default), which can take days or weeks.",
		"backups":     "Backups of the database hold erased data until they are deleted: the operator keeps them for at most %d days.",
		"no_backups":  "The operator keeps no backups of the database.",
		"rights":      "Your rights",
		"rights_text": "On the account page, with your access code, and through the API, at once: download everything held for your account (access), change or remove your email (rectify), erase your account (erase), restrict processing (restrict), and stop marketing mail (object). Every marketing mail has a one-click unsubscribe link. Transactional mail (receipts, reminders, policy changes) is always sent to an account with an email.",
	},
}

// RetentionText describes a rule in words, with the configured periods.
func RetentionText(r Rule, p Periods) string {
	switch r {
	case RuleUnusedAccount:
		return fmt.Sprintf("While the account is used; deleted %d days after the paid or trial time ends and the last login, whichever is latest, unless a legal hold applies.", int(p.UnusedAccount/(24*time.Hour)))
	case RuleWithAccount:
		return "Until you delete it, or with the account; a deleted device leaves every gateway within one synchronisation."
	case RuleSessionExpiry:
		return "Until the session expires or you log out."
	case RuleLinkExpiry:
		return fmt.Sprintf("Until the link is used, at most %d hour.", int(RecoveryLinkTTL/time.Hour))
	case RuleSupport:
		return fmt.Sprintf("%d months after each message was written, unless a legal hold applies.", SupportMonths)
	case RuleOutbox:
		return fmt.Sprintf("Deleted as soon as it is sent; mail that cannot be delivered is deleted after %d days.", int(OutboxRetention/(24*time.Hour)))
	case RuleTax:
		return fmt.Sprintf("%d years, as tax law requires, then deleted.", p.TaxYears)
	case RuleCounters:
		return fmt.Sprintf("%d days.", int(CounterRetention/(24*time.Hour)))
	case RulePeerHistory:
		return fmt.Sprintf("Until every gateway has dropped the device, at most %d hours.", int(PeerHistory/time.Hour))
	case RuleOperator:
		return "Until the operator removes the gateway."
	case RuleForever:
		return "For as long as the service runs."
	}
	return "Unknown rule " + string(r)
}

// Document is a rendered policy, for the HTML page and the published text.
type Document struct {
	Lang     string
	Prose    []Block
	Labels   map[string]string
	Sections []Section
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
	Fields                                                  []Field
	SharedWith                                              []string
}

// Render builds the policy in lang (the default language when unknown)
// from the operator's prose and the inventory.
func Render(lang, prose string, p Periods) *Document {
	if !slices.Contains(Languages, lang) {
		lang = Languages[0]
	}
	l := labels[lang]
	backups := l["no_backups"]
	if p.BackupDays > 0 {
		backups = fmt.Sprintf(l["backups"], p.BackupDays)
	}
	d := &Document{Lang: lang, Labels: l, Prose: parseProse(prose), Erasure: []string{l["erasure_now"], l["erasure_wal"], backups}}
	for _, c := range Inventory {
		d.Sections = append(d.Sections, Section{
			ID: c.ID, Name: c.Name, Purpose: c.Purpose, LegalBasis: c.LegalBasis,
			Retention: RetentionText(c.Retention, p), Storage: c.Storage, Note: c.Note,
			Fields: c.Fields, SharedWith: c.SharedWith,
		})
	}
	return d
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
	fmt.Fprintf(&b, "# %s\n\n%s\n\n%s\n\n", l["inventory"], l["intro"], l["never"])
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

// DefaultProse is the operator's text when none is configured.
const DefaultProse = `# Who we are

This Veil service is run by its operator, who is responsible for the data described below. Write to support for any question about your data.

# Our promise

We keep no logs of what you do through the VPN: no IP addresses, no DNS queries, no connection records. Your account is a random access code; an email is optional.

# The privacy tools

My IP, the DNS leak test, the speed test, ping, whois and the web proxy keep nothing about you: not your address, not what you asked, not the answers. What they hold lives in memory for minutes: a DNS leak test is forgotten within 10 minutes, and the limit on how often one visitor may use ping, whois and the web proxy counts keyed hashes that are replaced every 10 minutes. The web proxy sends the sites you open nothing of yours: no address, cookie or referrer.`
