package controlplane

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"veil/internal/apitypes"
	"veil/internal/store"
)

// Billing (promise P7): payment processors take the payment; Veil only
// hears, by a signed notification, that an account has paid, and keeps
// the record the data inventory describes. No card number, name or
// address ever reaches it.
//
//	POST /api/v1/billing/{processor}
//	Veil-Signature: t=UNIX-TIME,v1=HEX(HMAC-SHA256(secret, "UNIX-TIME." + body))
//
//	{"type": "payment.succeeded", "reference": "pi_123", "account": "42-abcdefghij",
//	 "product": "premium-30", "days": 30, "amount_cents": 500, "currency": "EUR"}
//
// account is the payment reference the account page shows (Hasher.
// PaymentRef). A notification told twice (same processor and reference)
// counts once. {"type": "payment.refunded", "reference": "pi_123"} takes
// back the paid time that payment bought; told before the payment, it is
// kept, and the payment then buys nothing. Other event types are
// acknowledged and ignored. The answer is {"applied": true} for a change
// made now, false for a repeat.

// PaymentEvent is the body of a processor's notification.
type PaymentEvent struct {
	Type        string `json:"type"`
	Reference   string `json:"reference"`
	Account     string `json:"account"`
	Product     string `json:"product"`
	Days        int    `json:"days"`
	AmountCents int64  `json:"amount_cents"`
	Currency    string `json:"currency"`
}

// The event types taken: a payment, and its refund (which needs only the
// reference).
const (
	EventPaid     = "payment.succeeded"
	EventRefunded = "payment.refunded"
)

// signatureTolerance is how far a notification's time may be from ours.
const signatureTolerance = 5 * time.Minute

// SignPayment returns the Veil-Signature header value for body, as a
// processor (or a test) computes it.
func SignPayment(secret string, at time.Time, body []byte) string {
	t := strconv.FormatInt(at.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(t + "."))
	m.Write(body)
	return "t=" + t + ",v1=" + hex.EncodeToString(m.Sum(nil))
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
	want := SignPayment(secret, time.Unix(sec, 0), body)
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

// parseEvent reads a notification's body strictly: one JSON object and
// nothing after it, no key twice (encoding/json v1 takes the last one
// silently). The signature covers the bytes, not their meaning; a body
// that two parsers read differently could make Veil act on what the
// processor never meant.
func parseEvent(body []byte) (PaymentEvent, error) {
	var ev PaymentEvent
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

var (
	currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)
	textRE     = regexp.MustCompile(`^[\x21-\x7e]{1,200}$`) // printable ASCII, no spaces
)

// check validates a payment event's fields.
func (e *PaymentEvent) check() error {
	switch {
	case !textRE.MatchString(e.Reference):
		return errors.New("reference: 1 to 200 printable characters")
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

func (s *Server) billingWebhook(w http.ResponseWriter, r *http.Request) {
	processor := r.PathValue("processor")
	secret, ok := s.cfg.BillingSecrets[processor]
	if !ok {
		writeError(w, http.StatusNotFound, "no such payment processor")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, "request body unreadable or too large")
		return
	}
	if err := checkSignature(r.Header.Get("Veil-Signature"), secret, body, s.cfg.Now()); err != nil {
		writeError(w, http.StatusUnauthorized, err.Error())
		return
	}
	ev, err := parseEvent(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	switch ev.Type {
	case EventPaid:
	case EventRefunded:
		s.refund(w, r, processor, ev.Reference)
		return
	default:
		writeJSON(w, http.StatusOK, map[string]bool{"ignored": true})
		return
	}
	if err := ev.check(); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// A reference that names no account (0) still records the payment,
	// detached: the money was taken, and support can attach it.
	accountID, _ := s.cfg.Hasher.ParsePaymentRef(ev.Account)
	applied, err := s.cfg.Store.RecordPayment(r.Context(), store.Payment{
		AccountID: accountID, Processor: processor, Reference: ev.Reference,
		Product: ev.Product, Days: ev.Days, AmountCents: ev.AmountCents, Currency: ev.Currency,
	}, s.cfg.Now())
	if err != nil {
		s.fail(w, "recording payment", err)
		return
	}
	if applied {
		s.log.Info("payment recorded", "processor", processor, "attached", accountID != 0)
	}
	writeJSON(w, http.StatusOK, map[string]bool{"applied": applied})
}

// refund takes back the paid time of a refunded payment, or keeps the
// refund for its payment when that has not been told yet.
func (s *Server) refund(w http.ResponseWriter, r *http.Request, processor, reference string) {
	if !textRE.MatchString(reference) {
		writeError(w, http.StatusBadRequest, "reference: 1 to 200 printable characters")
		return
	}
	applied, err := s.cfg.Store.RefundPayment(r.Context(), processor, reference, s.cfg.Now())
	if err != nil {
		s.fail(w, "refunding payment", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"applied": applied})
}

// adminBilling lists billing records for the operator's accounts:
// ?from=YYYY-MM-DD&to=YYYY-MM-DD (UTC days, to exclusive), both optional.
func (s *Server) adminBilling(w http.ResponseWriter, r *http.Request) {
	var bounds [2]time.Time
	for i, k := range []string{"from", "to"} {
		v := r.URL.Query().Get(k)
		if v == "" {
			continue
		}
		d, err := time.Parse(time.DateOnly, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, k+": want a date like 2026-01-31")
			return
		}
		bounds[i] = d
	}
	recs, err := s.cfg.Store.BillingRecords(r.Context(), bounds[0], bounds[1])
	if err != nil {
		s.fail(w, "reading billing records", err)
		return
	}
	out := []apitypes.BillingRecord{}
	for _, rec := range recs {
		out = append(out, apitypes.BillingRecord{ID: rec.ID, Account: rec.AccountID, Processor: rec.Processor,
			Reference: rec.Reference, Product: rec.Product, Days: rec.Days, AmountCents: rec.AmountCents,
			Currency: rec.Currency, CreatedAt: rec.CreatedAt, RefundedAt: timePtr(rec.RefundedAt)})
	}
	writeJSON(w, http.StatusOK, out)
}

// adminAttachBilling gives a detached payment to the account whose
// payment reference the customer told support.
func (s *Server) adminAttachBilling(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad record id")
		return
	}
	var req apitypes.BillingAttachRequest
	if err := decode(w, r, &req); err != nil {
		writeDecodeError(w, err)
		return
	}
	accountID, ok := s.cfg.Hasher.ParsePaymentRef(req.PaymentReference)
	if !ok {
		writeError(w, http.StatusBadRequest, "not a payment reference of this service")
		return
	}
	err = s.cfg.Store.AttachPayment(r.Context(), id, accountID, s.cfg.Now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "no such billing record or account")
	case errors.Is(err, store.ErrAttached):
		writeError(w, http.StatusConflict, err.Error())
	case err != nil:
		s.fail(w, "attaching payment", err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// checkoutURL is the account's payment page, or "" when none is set.
func (s *Server) checkoutURL(accountID int64) string {
	if s.cfg.CheckoutURL == "" {
		return ""
	}
	return strings.ReplaceAll(s.cfg.CheckoutURL, "{ref}", url.QueryEscape(s.cfg.Hasher.PaymentRef(accountID)))
}
