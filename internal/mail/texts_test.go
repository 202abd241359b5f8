package mail_test

import (
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"veil/internal/i18n"
	"veil/internal/mail"
)

// messageID is what a message the catalogue lacks shows as.
var messageID = regexp.MustCompile(`mail\.(receipt|reminder|date|month|processor)`)

// TestTexts: in every language of the site the receipt and the reminder
// find all their messages (a missing one would show as its id), write
// dates, amounts and counts as that language does, line up the
// receipt's table, and hold no English but names.
func TestTexts(t *testing.T) {
	paid := time.Date(2026, 12, 1, 23, 30, 0, 0, time.FixedZone("UTC-2", -7200)) // 2 December in UTC
	tests := []struct {
		lang, date, amount, days, left string
	}{
		{"en", "2 December 2026", "1,234.56 EUR", "30 days", "in 2 days"},
		{"ru", "2 декабря 2026 г.", "1\u00a0234,56 EUR", "30 дней", "через 2 дня"},
		{"de", "2. Dezember 2026", "1.234,56 EUR", "30 Tage", "in 2 Tagen"},
		{"fr", "2 décembre 2026", "1\u00a0234,56 EUR", "30 jours", "dans 2 jours"},
		{"es", "2 de diciembre de 2026", "1.234,56 EUR", "30 días", "dentro de 2 días"},
		{"tr", "2 Aralık 2026", "1.234,56 EUR", "30 gün", "2 gün sonra"},
		{"zh", "2026年12月2日", "1,234.56 EUR", "30 天", "还剩 2 天"},
	}
	if len(tests) != len(i18n.Langs) {
		t.Fatalf("the test knows %d languages, the site has %d", len(tests), len(i18n.Langs))
	}
	for _, tt := range tests {
		t.Run(tt.lang, func(t *testing.T) {
			rs, rb := mail.Receipt{Product: "premium-30", Days: 30, AmountCents: 123456, Currency: "EUR",
				Processor: "stripe", Reference: "pi_1", PaidUntil: paid}.Text(tt.lang)
			ms, mb := mail.Reminder{PaidUntil: paid, DaysLeft: 2, AccountURL: "https://vpn.example/account"}.Text(tt.lang)
			for _, s := range []string{rs, rb, ms, mb} {
				if messageID.MatchString(s) || strings.Contains(s, "{{") || strings.Contains(s, "<no value>") {
					t.Errorf("a message is missing or half filled:\n%s", s)
				}
			}
			for _, want := range []string{tt.date, tt.amount, tt.days, "premium-30", "stripe", "pi_1"} {
				if !strings.Contains(rb, want) {
					t.Errorf("receipt lacks %q:\n%s", want, rb)
				}
			}
			if !strings.Contains(ms, tt.date) || !strings.Contains(mb, tt.date) || !strings.Contains(mb, tt.left) ||
				!strings.Contains(mb, "https://vpn.example/account\n") {
				t.Errorf("reminder lacks %q, %q or the link:\n%s\n\n%s", tt.date, tt.left, ms, mb)
			}
			if tt.lang != i18n.Default {
				for _, en := range []string{"Thank you", "receipt", "paid time", "Paid", "days", "Amount"} {
					if strings.Contains(rs+rb+ms+mb, en) {
						t.Errorf("holds the English %q:\n%s\n%s", en, rb, mb)
					}
				}
			}
			if tt.lang != "zh" { // no wide characters: columns are runes
				col := -1
				for _, line := range strings.Split(rb, "\n") {
					for _, v := range []string{"premium-30", tt.days, tt.amount, "stripe", "pi_1"} {
						if i := strings.Index(line, v); strings.HasPrefix(line, "  ") && i > 0 && strings.HasSuffix(line, v) {
							if c := utf8.RuneCountInString(line[:i]); col < 0 {
								col = c
							} else if c != col {
								t.Errorf("the receipt's values are not lined up:\n%s", rb)
							}
						}
					}
				}
			}
		})
	}
	// A voucher is named in the reader's language, and a payment with no
	// amount shows none.
	_, b := mail.Receipt{Product: "p", Days: 1, Processor: "voucher", Reference: "v", PaidUntil: paid}.Text("de")
	if !strings.Contains(b, "Gutschein") || strings.Contains(b, "Betrag") || !strings.Contains(b, "1 Tag\n") {
		t.Errorf("German voucher receipt:\n%s", b)
	}
	// French writes the first of the month as an ordinal.
	if got := mail.Date("fr", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)); got != "1er janvier 2027" {
		t.Errorf("French 1 January = %q", got)
	}
	if got := mail.Date("ru", time.Time{}); got != "" {
		t.Errorf("no date = %q", got)
	}
}
