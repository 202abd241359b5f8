package mail

import (
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/number"
	"golang.org/x/text/width"

	"veil/internal/i18n"
)

// The texts of the mails that come from the billing side: their words
// are messages of the catalogue (catalog/mail.LANG.toml), their dates
// and amounts are written as lang writes them.

// Date is t's day (UTC) as lang writes it in a sentence: "3 December
// 2026", "3 декабря 2026 г.", "2026年12月3日". A zero t is "".
func Date(lang string, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	l := i18n.For(lang)
	t = t.UTC()
	return l.N("mail.date", t.Day(), "Month", l.T("mail.month."+strconv.Itoa(int(t.Month()))), "Year", t.Year())
}

// Amount is cents of currency as lang writes money: "1,234.50 EUR",
// "1 234,50 EUR".
func Amount(lang string, cents int64, currency string) string {
	l := i18n.For(lang)
	p := message.NewPrinter(language.MustParse(l.Lang.Code))
	n := p.Sprint(number.Decimal(float64(cents)/100, number.Scale(2)))
	return l.T("mail.receipt.money", "Amount", n, "Currency", currency)
}

// Receipt is what a payment's receipt says.
type Receipt struct {
	// Product is what was bought ("premium-30"), Days its paid time.
	Product string
	Days    int
	// AmountCents of Currency; 0: no amount is shown (a voucher).
	AmountCents int64
	Currency    string
	// Processor took the payment ("stripe", "voucher"); Reference is the
	// payment's name there.
	Processor, Reference string
	// PaidUntil is the end of the account's paid time after the payment.
	PaidUntil time.Time
}

// Text is the receipt's subject and body in lang.
func (r Receipt) Text(lang string) (subject, body string) {
	l := i18n.For(lang)
	rows := [][2]string{
		{l.T("mail.receipt.what"), r.Product},
		{l.T("mail.receipt.paid_time"), l.N("mail.receipt.days", r.Days)},
	}
	if r.AmountCents > 0 {
		rows = append(rows, [2]string{l.T("mail.receipt.amount"), Amount(lang, r.AmountCents, r.Currency)})
	}
	rows = append(rows,
		[2]string{l.T("mail.receipt.paid_with"), l.Or("mail.processor."+r.Processor, r.Processor)},
		[2]string{l.T("mail.receipt.reference"), r.Reference})
	body = l.T("mail.receipt.body", "Details", table(rows), "PaidUntil", Date(lang, r.PaidUntil))
	return l.T("mail.receipt.subject"), strings.TrimSpace(body) + "\n"
}

// Reminder is what the reminder of a paid time's end says.
type Reminder struct {
	PaidUntil time.Time
	// DaysLeft until PaidUntil, at least 1.
	DaysLeft int
	// AccountURL is the account page in the reader's language.
	AccountURL string
}

// Text is the reminder's subject and body in lang.
func (r Reminder) Text(lang string) (subject, body string) {
	l := i18n.For(lang)
	until := Date(lang, r.PaidUntil)
	body = l.N("mail.reminder.body", max(r.DaysLeft, 1), "PaidUntil", until, "Link", r.AccountURL)
	return l.T("mail.reminder.subject", "PaidUntil", until), strings.TrimSpace(body) + "\n"
}

// table writes label/value rows (each label ending in its colon) as an
// indented plain-text table, the values lined up in one column however
// wide the labels' script is.
func table(rows [][2]string) string {
	w := 0
	for _, r := range rows {
		w = max(w, textWidth(r[0]))
	}
	var b strings.Builder
	for i, r := range rows {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString("  " + r[0] + strings.Repeat(" ", w-textWidth(r[0])+2) + r[1])
	}
	return b.String()
}

// textWidth is how many columns s takes in a monospaced font: two for
// each wide (CJK) character.
func textWidth(s string) int {
	n := 0
	for _, c := range s {
		switch width.LookupRune(c).Kind() {
		case width.EastAsianWide, width.EastAsianFullwidth:
			n += 2
		default:
			n++
		}
	}
	return n
}
