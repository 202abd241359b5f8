package billing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// The generic signed notification, for processors that can be told to
// send it (or a small relay in front of one):
//
//	POST /api/v1/billing/{processor}
//	Veil-Signature: t=UNIX-TIME,v1=HEX(HMAC-SHA256(secret, "UNIX-TIME." + body))
//
//	{"type": "payment.succeeded", "reference": "pi_123", "account": "42-abcdefghij",
//	 "product": "premium-30", "days": 30, "amount_cents": 500, "currency": "EUR"}
//
// {"type": "payment.refunded", "reference": "pi_123"} is its refund.
// Other types are acknowledged and ignored.

// GenericEvent is the body of a generic notification.
type GenericEvent struct {
	Type        string `json:"type"`
	Reference   string `json:"reference"`
	Account     string `json:"account"`
	Product     string `json:"product"`
	Days        int    `json:"days"`
	AmountCents int64  `json:"amount_cents"`
	Currency    string `json:"currency"`
}

// The generic event types taken: a payment, and its refund (which needs
// only the reference).
const (
	GenericPaid     = "payment.succeeded"
	GenericRefunded = "payment.refunded"
)

// signatureTolerance is how far a notification's time may be from ours.
const signatureTolerance = 5 * time.Minute

// SignGeneric returns the Veil-Signature header value for body, as a
// processor (or a test) computes it.
func SignGeneric(secret string, at time.Time, body []byte) string {
	t := strconv.FormatInt(at.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(t + "."))
	m.Write(body)
	return "t=" + t + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// ParseGeneric checks a generic notification's Veil-Signature header
// against secret at time now and reads its body.
func ParseGeneric(header, secret string, body []byte, now time.Time) (Event, error) {
	if err := checkSignature(header, secret, body, now); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	g, err := parseGeneric(body)
	if err != nil {
		return Event{}, err
	}
	switch g.Type {
	case GenericPaid:
		ev := Event{Kind: Paid, Reference: g.Reference, Account: g.Account, Product: g.Product,
			Days: g.Days, AmountCents: g.AmountCents, Currency: g.Currency}
		return ev, ev.Check()
	case GenericRefunded:
		return Event{Kind: Refunded, Reference: g.Reference}, CheckReference(g.Reference)
	}
	return Event{}, nil
}

// checkSignature verifies header against body and secret at time now.
// The header is read strictly: one t, in decimal digits, and at least
// one v1 (several allow a processor to roll its secret); other schemes
// are ignored.
func checkSignature(header, secret string, body []byte, now time.Time) error {
	errMalformed := errors.New("missing or malformed Veil-Signature")
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			if ts != "" || !digitsRE.MatchString(v) {
				return errMalformed
			}
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return errMalformed
	}
	if d := now.Sub(time.Unix(sec, 0)); d > signatureTolerance || d < -signatureTolerance {
		return errors.New("signature time too far from now (replayed, or a clock is wrong)")
	}
	want := SignGeneric(secret, time.Unix(sec, 0), body)
	_, want, _ = strings.Cut(want, ",v1=")
	for _, s := range sigs {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return errors.New("signature does not match")
}

// digitsRE is a signature's time: decimal digits, no sign.
var digitsRE = regexp.MustCompile(`^[0-9]{1,19}$`)

// parseGeneric reads a notification's body strictly: one JSON object and
// nothing after it, no key twice (encoding/json v1 takes the last one
// silently). The signature covers the bytes, not their meaning; a body
// that two parsers read differently could make Veil act on what the
// processor never meant.
func parseGeneric(body []byte) (GenericEvent, error) {
	var ev GenericEvent
	err := jsonv2.Unmarshal(body, &ev)
	switch {
	case err == nil:
		return ev, nil
	case errors.Is(err, jsontext.ErrDuplicateName):
		return ev, errors.New("malformed JSON: a key given twice")
	}
	var syn *jsontext.SyntacticError
	if errors.As(err, &syn) {
		return ev, fmt.Errorf("malformed JSON at byte %d: one object, nothing after it", syn.ByteOffset)
	}
	var sem *jsonv2.SemanticError
	if errors.As(err, &sem) && sem.JSONPointer != "" {
		return ev, fmt.Errorf("malformed JSON: field %s has the wrong type", truncate(string(sem.JSONPointer), 40))
	}
	return ev, errors.New("malformed JSON: want one object")
}
