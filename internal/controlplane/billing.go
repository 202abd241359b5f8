package controlplane

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"veil/internal/apitypes"
	"veil/internal/billing"
	"veil/internal/store"
)

// Billing (promise P7): payment processors take the payment; Veil only
// hears, by a signed notification, that an account has paid, and keeps
// the record the data inventory describes. internal/billing reads each
// processor's notifications:
//
//	POST /api/v1/billing/stripe    Stripe's events (billing.Stripe)
//	POST /api/v1/billing/btcpay    BTCPay Server's webhooks (billing.BTCPay)
//	POST /api/v1/billing/{name}    the generic signed notification (billing.ParseGeneric)
//
// A payment told twice (same processor and reference) counts once. A
// refund takes back the paid time that payment bought; told before the
// payment, it is kept, and the payment then buys nothing. The answer is
// {"applied": true} for a change made now, false for a repeat, and
// {"ignored": true} for an event that asks nothing.

func (s *Server) billingWebhook(w http.ResponseWriter, r *http.Request) {
	processor := r.PathValue("processor")
	// Stripe and BTCPay have their own endpoints; a generic secret under
	// their names is refused by the config.
	stripe := processor == "stripe" && s.cfg.Stripe != nil
	btcpay := processor == "btcpay" && s.cfg.BTCPay != nil
	secret, generic := s.cfg.BillingSecrets[processor]
	if !stripe && !btcpay && !generic {
		writeError(w, http.StatusNotFound, "no such payment processor")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, "request body unreadable or too large")
		return
	}
	var ev billing.Event
	switch {
	case stripe:
		ev, err = s.cfg.Stripe.Parse(r.Header.Get("Stripe-Signature"), body)
	case btcpay:
		ev, err = s.cfg.BTCPay.Parse(r.Context(), r.Header.Get("BTCPay-Sig"), body)
	default:
		ev, err = billing.ParseGeneric(r.Header.Get("Veil-Signature"), secret, body, s.cfg.Now())
	}
	switch {
	case errors.Is(err, billing.ErrSignature):
		writeError(w, http.StatusUnauthorized, err.Error())
		return
	case errors.Is(err, billing.ErrUpstream):
		s.log.Warn("payment processor unreachable", "processor", processor, "err", err)
		writeError(w, http.StatusBadGateway, "payment processor unreachable; send again later")
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	switch ev.Kind {
	case billing.Paid:
		s.recordPayment(w, r, processor, ev)
	case billing.Refunded:
		s.refund(w, r, processor, ev.Reference)
	default:
		writeJSON(w, http.StatusOK, map[string]bool{"ignored": true})
	}
}

// recordPayment records a checked payment and extends the paid time of the
// account it names.
func (s *Server) recordPayment(w http.ResponseWriter, r *http.Request, processor string, ev billing.Event) {
	// A reference that names no account (0) still records the payment,
	// detached: the money was taken, and support can attach it.
	accountID, _ := s.cfg.Hasher.ParsePaymentRef(ev.Account)
	applied, err := s.biz.recorder.Record(r.Context(), processor, accountID, ev)
	if errors.Is(err, billing.ErrReceipt) {
		s.log.Warn("payment recorded, receipt not queued", "err", err)
		err = nil
	}
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
	applied, err := s.biz.recorder.Refund(r.Context(), processor, reference)
	if err != nil {
		s.fail(w, "refunding payment", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"applied": applied})
}

// btcpayInvoice creates a BTCPay invoice for the account and a product,
// and answers its checkout link, for the account page's "pay with
// bitcoin".
func (s *Server) btcpayInvoice(w http.ResponseWriter, r *http.Request) {
	if s.cfg.BTCPay == nil {
		writeError(w, http.StatusNotFound, "BTCPay payments are not set up on this server")
		return
	}
	var req apitypes.InvoiceRequest
	if err := decode(w, r, &req); err != nil {
		writeDecodeError(w, err)
		return
	}
	prod, ok := s.cfg.BTCPay.Products[req.Product]
	if !ok {
		writeError(w, http.StatusBadRequest, "no such product")
		return
	}
	if _, ok := prod.Price(req.Currency); !ok {
		writeError(w, http.StatusBadRequest, "the product has no price in that currency")
		return
	}
	if u, err := url.Parse(req.RedirectURL); req.RedirectURL != "" && (err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "") {
		writeError(w, http.StatusBadRequest, "redirect_url: an http(s) URL")
		return
	}
	link, err := s.cfg.BTCPay.CreateInvoice(r.Context(), s.cfg.Hasher.PaymentRef(accountFrom(r).ID), req.Product, req.Currency, req.RedirectURL)
	if err != nil {
		s.log.Warn("creating BTCPay invoice", "err", err)
		writeError(w, http.StatusBadGateway, "the payment processor is unreachable; try again later")
		return
	}
	writeJSON(w, http.StatusOK, apitypes.Invoice{CheckoutLink: link})
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
	err = s.cfg.Store.AttachPayment(r.Context(), id, accountID, s.cfg.Business.AffiliatePercent, s.cfg.Now())
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
