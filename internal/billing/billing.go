// Package billing reads payment processors' notifications (promise P7):
// each processor's file checks its signature and turns its events into an
// Event that the store records. Processors take the payment; no card
// number, name or address ever reaches Veil.
package billing

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
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
	// Plan is the plan class of the product bought; empty: premium.
	Plan string
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

// Product is what a customer can buy: paid time on a plan class, at a
// price in one or more currencies.
type Product struct {
	ID   string
	Name string
	Days int
	// Plan is the plan class the paid time is on ("premium").
	Plan string
	// Prices are the product's prices, the first the default.
	Prices []Price
}

// Price is an amount in one currency.
type Price struct {
	AmountCents int64
	Currency    string
}

// Amount writes the price's amount as a decimal such as "5.00".
func (p Price) Amount() string { return formatAmount(p.AmountCents) }

// Price returns the product's price in currency, or the default price
// when currency is empty; false when it has none in currency.
func (p Product) Price(currency string) (Price, bool) {
	if currency == "" && len(p.Prices) > 0 {
		return p.Prices[0], true
	}
	for _, pr := range p.Prices {
		if pr.Currency == currency {
			return pr, true
		}
	}
	return Price{}, false
}

// Products are the products on sale, by id. Processors whose
// notifications name only a product (Stripe's metadata, BTCPay's
// invoices) take the paid time from here.
type Products map[string]Product

// Sorted lists the products by duration, then id, as the pricing page
// shows them.
func (p Products) Sorted() []Product {
	out := make([]Product, 0, len(p))
	for _, prod := range p {
		out = append(out, prod)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Days != out[j].Days {
			return out[i].Days < out[j].Days
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// ProductSyntax is the form of a product entry, for error messages.
const ProductSyntax = "ID=DAYS:PRICE[/PRICE…]:PLAN:NAME, PRICE as 5.00 EUR (premium-30=30:5.00 EUR/6.00 USD:premium:Premium, 30 days)"

var planRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// ParseProducts reads product entries "ID=DAYS:PRICES:PLAN:NAME", such
// as "premium-30=30:5.00 EUR/6.00 USD:premium:Premium, 30 days", where
// PRICES are one or more "AMOUNT CURRENCY" joined by "/" and NAME is the
// rest of the line. The older "ID=DAYS:AMOUNT:CURRENCY"
// ("premium-30=30:5.00:EUR") is still read: the premium plan, named by
// its id. An error names the entry.
func ParseProducts(entries []string) (Products, error) {
	out := Products{}
	for _, e := range entries {
		prod, err := parseProduct(e)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", truncate(e, 80), err)
		}
		if _, dup := out[prod.ID]; dup {
			return nil, fmt.Errorf("product %s given twice", prod.ID)
		}
		out[prod.ID] = prod
	}
	return out, nil
}

func parseProduct(e string) (Product, error) {
	id, spec, _ := strings.Cut(e, "=")
	parts := strings.SplitN(spec, ":", 4)
	if !productIDRE.MatchString(id) || len(parts) < 3 {
		return Product{}, fmt.Errorf("want %s", ProductSyntax)
	}
	days, err := strconv.Atoi(parts[0])
	if err != nil || days < 1 || days > 3660 {
		return Product{}, errors.New("days from 1 to 3660")
	}
	prod := Product{ID: id, Name: id, Days: days, Plan: "premium"}
	if len(parts) == 3 && currencyRE.MatchString(parts[2]) && amountRE.MatchString(parts[1]) {
		// The older form, DAYS:AMOUNT:CURRENCY.
		cents, err := parseAmount(parts[1])
		if err != nil {
			return Product{}, err
		}
		prod.Prices = []Price{{cents, parts[2]}}
		return prod, nil
	}
	if len(parts) != 4 {
		return Product{}, fmt.Errorf("want %s", ProductSyntax)
	}
	seen := map[string]bool{}
	for _, ps := range strings.Split(parts[1], "/") {
		amount, cur, ok := strings.Cut(strings.TrimSpace(ps), " ")
		if !ok || !currencyRE.MatchString(cur) {
			return Product{}, fmt.Errorf("price %q: want an amount and an ISO 4217 code, such as 5.00 EUR", truncate(ps, 32))
		}
		cents, err := parseAmount(amount)
		if err != nil {
			return Product{}, err
		}
		if seen[cur] {
			return Product{}, fmt.Errorf("two prices in %s", cur)
		}
		seen[cur] = true
		prod.Prices = append(prod.Prices, Price{cents, cur})
	}
	prod.Plan = parts[2]
	if !planRE.MatchString(prod.Plan) || prod.Plan == "free" {
		return Product{}, fmt.Errorf("plan %q: a lower-case word other than free, such as premium", truncate(prod.Plan, 32))
	}
	prod.Name = strings.TrimSpace(parts[3])
	if prod.Name == "" || len(prod.Name) > 80 || !utf8.ValidString(prod.Name) || strings.ContainsFunc(prod.Name, unicode.IsControl) {
		return Product{}, errors.New("name: 1 to 80 printable characters")
	}
	return prod, nil
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

// ParseAmount reads a decimal amount such as "5.00" as cents.
func ParseAmount(s string) (int64, error) { return parseAmount(s) }

// FormatAmount writes cents as a decimal such as "5.00".
func FormatAmount(cents int64) string { return formatAmount(cents) }
