// Package btcpaytest is a small BTCPay Server stand-in for tests: it
// speaks the Greenfield API's invoice calls (create, get) for one store
// and signs its webhooks as BTCPay does.
package btcpaytest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"veil/internal/billing"
)

// Invoice is an invoice as the stand-in keeps it.
type Invoice struct {
	ID       string            `json:"id"`
	StoreID  string            `json:"storeId"`
	Amount   string            `json:"amount"`
	Currency string            `json:"currency"`
	Status   string            `json:"status"`
	Checkout string            `json:"checkoutLink"`
	Metadata map[string]string `json:"metadata"`
}

// Server is the stand-in; URL is its address.
type Server struct {
	URL, APIKey, StoreID, Secret string

	srv      *httptest.Server
	mu       sync.Mutex
	invoices map[string]*Invoice
	n        int
}

// New starts a stand-in for store storeID, taking apiKey and signing
// webhooks with secret; it stops when the test ends.
func New(t testing.TB, apiKey, storeID, secret string) *Server {
	s := &Server{APIKey: apiKey, StoreID: storeID, Secret: secret, invoices: map[string]*Invoice{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/stores/{store}/invoices", s.auth(s.create))
	mux.HandleFunc("GET /api/v1/stores/{store}/invoices/{id}", s.auth(s.get))
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "token "+s.APIKey {
			http.Error(w, `{"code":"unauthenticated","message":"Authentication is required"}`, http.StatusUnauthorized)
			return
		}
		if r.PathValue("store") != s.StoreID {
			http.Error(w, `{"code":"store-not-found"}`, http.StatusNotFound)
			return
		}
		h(w, r)
	}
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Amount   string            `json:"amount"`
		Currency string            `json:"currency"`
		Metadata map[string]string `json:"metadata"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Amount == "" || req.Currency == "" {
		http.Error(w, `{"code":"validation"}`, http.StatusUnprocessableEntity)
		return
	}
	s.mu.Lock()
	s.n++
	id := fmt.Sprintf("INV%04d", s.n)
	inv := &Invoice{ID: id, StoreID: s.StoreID, Amount: req.Amount, Currency: req.Currency, Status: "New",
		Checkout: s.URL + "/i/" + id, Metadata: req.Metadata}
	s.invoices[id] = inv
	out := *inv
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	inv, ok := s.invoices[r.PathValue("id")]
	var out Invoice
	if ok {
		out = *inv
	}
	s.mu.Unlock()
	if !ok {
		http.Error(w, `{"code":"invoice-not-found"}`, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// Invoice returns a copy of the invoice id, or false.
func (s *Server) Invoice(id string) (Invoice, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv, ok := s.invoices[id]
	if !ok {
		return Invoice{}, false
	}
	return *inv, true
}

// SetStatus moves invoice id to status (Settled, Expired, Invalid…).
func (s *Server) SetStatus(id, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invoices[id].Status = status
}

// Webhook returns the body and BTCPay-Sig header of a webhook of type
// typ (InvoiceSettled, InvoiceExpired, InvoiceInvalid) about invoice id.
func (s *Server) Webhook(typ, id string) (body []byte, sig string) {
	s.mu.Lock()
	var meta map[string]string
	if inv, ok := s.invoices[id]; ok {
		meta = inv.Metadata
	}
	s.n++
	s.mu.Unlock()
	body, _ = json.Marshal(map[string]any{
		"deliveryId": fmt.Sprintf("DLV%04d", s.n), "webhookId": "WH1", "originalDeliveryId": fmt.Sprintf("DLV%04d", s.n),
		"isRedelivery": false, "type": typ, "timestamp": time.Now().Unix(),
		"storeId": s.StoreID, "invoiceId": id, "metadata": meta,
	})
	return body, billing.SignBTCPay(s.Secret, body)
}

// SetMetadata sets a metadata field of invoice id.
func (s *Server) SetMetadata(id, key, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invoices[id].Metadata[key] = value
}
