package billing

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"
)

// Stripe reads Stripe's webhook events, signed in the Stripe-Signature
// header with the endpoint's secret:
//
//   - checkout.session.completed (and checkout.session.async_payment_succeeded
//     for payment methods that settle later), once payment_status is
//     "paid": client_reference_id is the account's payment reference,
//     metadata "product" the product bought (Products gives its days), or,
//     for a session of a Payment Link, the product whose link it is (Links),
//     amount_total and currency what was paid. The payment's reference is
//     its payment intent, so that its refund finds it.
//   - charge.refunded, when the charge is refunded in full: the refund of
//     the payment intent it charged. A partial refund keeps the paid time.
type Stripe struct {
	// Secret is the webhook endpoint's signing secret (whsec_…).
	Secret   string
	Products Products
	// Links are the products' Payment Links, by product id.
	Links map[string]StripeLink
}

// StripeLink is a product's Stripe Payment Link: its id (plink_…), which
// the link's checkout sessions carry, and its URL, to which the account
// page adds ?client_reference_id=PAYMENT-REFERENCE.
type StripeLink struct {
	ID, URL string
}

// ParseStripeLinks reads "PRODUCT=plink_ID:URL" entries, such as
// "premium-30=plink_1Abc:https://buy.stripe.com/test_123", for products
// on sale.
func ParseStripeLinks(entries []string, products Products) (map[string]StripeLink, error) {
	out := map[string]StripeLink{}
	for _, e := range entries {
		prod, rest, _ := strings.Cut(e, "=")
		id, u, _ := strings.Cut(rest, ":")
		pu, err := url.Parse(u)
		// http only to loopback: a local stand-in of Stripe's page.
		secure := err == nil && (pu.Scheme == "https" || pu.Scheme == "http" && (pu.Hostname() == "127.0.0.1" || pu.Hostname() == "localhost"))
		if !strings.HasPrefix(id, "plink_") || !secure || pu.Host == "" || pu.RawQuery != "" {
			return nil, fmt.Errorf("%q: want PRODUCT=plink_ID:https://buy.stripe.com/…", truncate(e, 80))
		}
		if _, ok := products[prod]; !ok {
			return nil, fmt.Errorf("%q: no product %s", truncate(e, 80), truncate(prod, 64))
		}
		if _, dup := out[prod]; dup {
			return nil, fmt.Errorf("product %s has two links", prod)
		}
		out[prod] = StripeLink{ID: id, URL: u}
	}
	return out, nil
}

// For returns the link for the account whose payment reference is ref.
func (l StripeLink) For(ref string) string {
	return l.URL + "?client_reference_id=" + url.QueryEscape(ref)
}

// stripeTolerance is how old a Stripe event's signature may be.
const stripeTolerance = 5 * time.Minute

// Parse checks an event's signature and reads it.
func (s *Stripe) Parse(header string, body []byte) (Event, error) {
	ev, err := webhook.ConstructEventWithOptions(body, header, s.Secret, webhook.ConstructEventOptions{Tolerance: stripeTolerance})
	switch {
	case errors.Is(err, webhook.ErrTooOld):
		return Event{}, fmt.Errorf("%w: signature too old (replayed, or a clock is wrong)", ErrSignature)
	case errors.Is(err, webhook.ErrNotSigned), errors.Is(err, webhook.ErrInvalidHeader), errors.Is(err, webhook.ErrNoValidSignature):
		return Event{}, fmt.Errorf("%w: %v", ErrSignature, err)
	case err != nil:
		return Event{}, fmt.Errorf("stripe event: %v", err)
	}
	switch ev.Type {
	case stripe.EventTypeCheckoutSessionCompleted, stripe.EventTypeCheckoutSessionAsyncPaymentSucceeded:
		return s.checkout(ev)
	case stripe.EventTypeChargeRefunded:
		var ch stripe.Charge
		if err := json.Unmarshal(ev.Data.Raw, &ch); err != nil {
			return Event{}, fmt.Errorf("stripe charge: %v", err)
		}
		if !ch.Refunded || ch.PaymentIntent == nil {
			return Event{}, nil
		}
		return Event{Kind: Refunded, Reference: ch.PaymentIntent.ID}, CheckReference(ch.PaymentIntent.ID)
	}
	return Event{}, nil
}

func (s *Stripe) checkout(ev stripe.Event) (Event, error) {
	var cs stripe.CheckoutSession
	if err := json.Unmarshal(ev.Data.Raw, &cs); err != nil {
		return Event{}, fmt.Errorf("stripe checkout session: %v", err)
	}
	if cs.PaymentStatus != stripe.CheckoutSessionPaymentStatusPaid {
		return Event{}, nil // paid later: async_payment_succeeded tells it
	}
	if cs.PaymentIntent == nil {
		return Event{}, errors.New("stripe checkout session: no payment_intent (only one-time payments are taken)")
	}
	id := cs.Metadata["product"]
	if id == "" && cs.PaymentLink != nil {
		for p, l := range s.Links {
			if l.ID == cs.PaymentLink.ID {
				id = p
			}
		}
	}
	prod, err := s.Products.lookup(id)
	if err != nil {
		return Event{}, err
	}
	out := Event{Kind: Paid, Reference: cs.PaymentIntent.ID, Account: cs.ClientReferenceID,
		Product: id, Days: prod.Days, AmountCents: cs.AmountTotal,
		Currency: strings.ToUpper(string(cs.Currency)), Plan: prod.Plan}
	return out, out.Check()
}
