package billing

import (
	"encoding/json"
	"errors"
	"fmt"
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
//     metadata "product" the product bought (Products gives its days),
//     amount_total and currency what was paid. The payment's reference is
//     its payment intent, so that its refund finds it.
//   - charge.refunded, when the charge is refunded in full: the refund of
//     the payment intent it charged. A partial refund keeps the paid time.
type Stripe struct {
	// Secret is the webhook endpoint's signing secret (whsec_…).
	Secret   string
	Products Products
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
	prod, err := s.Products.lookup(cs.Metadata["product"])
	if err != nil {
		return Event{}, err
	}
	out := Event{Kind: Paid, Reference: cs.PaymentIntent.ID, Account: cs.ClientReferenceID,
		Product: cs.Metadata["product"], Days: prod.Days, AmountCents: cs.AmountTotal,
		Currency: strings.ToUpper(string(cs.Currency))}
	return out, out.Check()
}
