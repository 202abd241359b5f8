// Package billing reads payment processors' notifications (promise P7):
// each processor's file checks its signature and turns its events into an
// Event that the store records. Processors take the payment; no card
// number, name or address ever reaches Veil.
package billing

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Kind is what a notification asks of Veil.
type Kind int

// The kinds of event: anything else a processor tells is acknowledged and
// changes nothing.
const (
	Ignored Kind = iota
	Paid
	Refunded
)

// Event is a processor's notification as Veil acts on it. A Refunded event
// carries only Reference.
type Event struct {
	Kind Kind
	// Reference is the processor's reference of the payment; with the
	// processor's name it makes a payment count once.
	Reference string
	// Account is the payment reference the account page shows; one that
	// names no account records the payment detached.
	Account     string
	Product     string
	Days        int
	AmountCents int64
	Currency    string
}

// ErrSignature wraps every refusal of a notification's signature or time.
var ErrSignature = errors.New("signature refused")

// ErrUpstream wraps a failure to ask the processor about a notification;
// the processor should send it again later.
var ErrUpstream = errors.New("payment processor unreachable")

var (
	currencyRE  = regexp.MustCompile(`^[A-Z]{3}$`)
	textRE      = regexp.MustCompile(`^[\x21-\x7e]{1,200}$`) // printable ASCII, no spaces
	productIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
)

// CheckReference validates a payment's reference.
func CheckReference(ref string) error {
	if !textRE.MatchString(ref) {
		return errors.New("reference: 1 to 200 printable characters")
	}
	return nil
}

// Check validates a Paid event's fields.
func (e *Event) Check() error {
	switch {
	case CheckReference(e.Reference) != nil:
		return CheckReference(e.Reference)
	case !textRE.MatchString(e.Product) || len(e.Product) > 64:
		return errors.New("product: 1 to 64 printable characters")
	case e.Days < 1 || e.Days > 3660:
		return errors.New("days: 1 to 3660")
	case e.AmountCents < 0:
		return errors.New("amount_cents: not negative")
	case !currencyRE.MatchString(e.Currency):
		return errors.New("currency: an ISO 4217 code such as EUR")
	}
	return nil
}

// Product is what a customer can buy: paid time, at a price.
type Product struct {
	Days        int
	AmountCents int64
	Currency    string
}

// Products are the products on sale, by id. Processors whose
// notifications name only a product (Stripe's metadata, BTCPay's
// invoices) take the paid time from here.
type Products map[string]Product

// ParseProducts reads "ID=DAYS:AMOUNT:CURRENCY" entries, such as
// "premium-30=30:5.00:EUR".
func ParseProducts(entries []string) (Products, error) {
	out := Products{}
	for _, e := range entries {
		id, spec, _ := strings.Cut(e, "=")
		parts := strings.Split(spec, ":")
		if !productIDRE.MatchString(id) || len(parts) != 3 {
			return nil, fmt.Errorf("%q: want ID=DAYS:AMOUNT:CURRENCY, such as premium-30=30:5.00:EUR", e)
		}
		days, err := strconv.Atoi(parts[0])
		if err != nil || days < 1 || days > 3660 {
			return nil, fmt.Errorf("%q: days from 1 to 3660", e)
		}
		cents, err := parseAmount(parts[1])
		if err != nil {
			return nil, fmt.Errorf("%q: %v", e, err)
		}
		if !currencyRE.MatchString(parts[2]) {
			return nil, fmt.Errorf("%q: currency: an ISO 4217 code such as EUR", e)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("product %s given twice", id)
		}
		out[id] = Product{Days: days, AmountCents: cents, Currency: parts[2]}
	}
	return out, nil
}

// lookup returns the product id names, for an event.
func (p Products) lookup(id string) (Product, error) {
	prod, ok := p[id]
	if !ok {
		return Product{}, fmt.Errorf("product %q: not in this server's products", truncate(id, 64))
	}
	return prod, nil
}

var amountRE = regexp.MustCompile(`^([0-9]{1,12})(?:\.([0-9]+))?$`)

// parseAmount reads a decimal amount such as "5.00" as cents; digits past
// the cents must be zeros (a processor's "5.000000").
func parseAmount(s string) (int64, error) {
	m := amountRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("amount %q: want a decimal such as 5.00", truncate(s, 32))
	}
	frac := m[2] + "00"
	if strings.Trim(frac[2:], "0") != "" {
		return 0, fmt.Errorf("amount %q: finer than cents", truncate(s, 32))
	}
	whole, _ := strconv.ParseInt(m[1], 10, 64)
	cents, _ := strconv.ParseInt(frac[:2], 10, 64)
	return whole*100 + cents, nil
}

// formatAmount writes cents as a decimal such as "5.00".
func formatAmount(cents int64) string {
	return fmt.Sprintf("%d.%02d", cents/100, cents%100)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
