package billing

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// BTCPay takes payments through a BTCPay Server store: it creates
// invoices through the Greenfield API and reads the store's webhooks,
// signed in the BTCPay-Sig header ("sha256=" + HEX(HMAC-SHA256(secret,
// body))).
//
//   - InvoiceSettled: the payment. The invoice's amount, currency and
//     metadata are asked of the Greenfield API, not taken from the
//     webhook, and only a Settled invoice pays. Its metadata "orderId" is
//     the account's payment reference, "veilProduct" the product.
//   - InvoiceInvalid: the invoice was marked invalid (after a settlement
//     too): the paid time it bought is taken back, as a refund.
//   - InvoiceExpired and the rest: nothing was paid; acknowledged.
//
// BTCPay's signature covers no time, and BTCPay resends a delivery
// unchanged when it fails; a replayed webhook changes nothing because the
// invoice's state comes from the API and each invoice is recorded once.
type BTCPay struct {
	// URL is the BTCPay Server, such as https://btcpay.example.
	URL string
	// APIKey is a Greenfield API key with the store's invoice permissions.
	APIKey  string
	StoreID string
	// Secret is the store webhook's secret.
	Secret   string
	Products Products
	// Client makes the Greenfield calls; nil: http.DefaultClient.
	Client *http.Client
}

// btcpayWebhook is the part of a BTCPay webhook Veil reads.
type btcpayWebhook struct {
	Type      string `json:"type"`
	StoreID   string `json:"storeId"`
	InvoiceID string `json:"invoiceId"`
}

// btcpayInvoice is the part of a Greenfield invoice Veil reads.
type btcpayInvoice struct {
	ID           string `json:"id"`
	Amount       string `json:"amount"`
	Currency     string `json:"currency"`
	Status       string `json:"status"`
	CheckoutLink string `json:"checkoutLink"`
	Metadata     struct {
		OrderID string `json:"orderId"`
		Product string `json:"veilProduct"`
	} `json:"metadata"`
}

// SignBTCPay returns the BTCPay-Sig header value for body, as BTCPay
// Server computes it.
func SignBTCPay(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Parse checks a webhook's signature and reads it, asking the Greenfield
// API for the invoice it names.
func (b *BTCPay) Parse(ctx context.Context, header string, body []byte) (Event, error) {
	if !hmac.Equal([]byte(header), []byte(SignBTCPay(b.Secret, body))) {
		return Event{}, fmt.Errorf("%w: BTCPay-Sig missing or not matching", ErrSignature)
	}
	var wh btcpayWebhook
	if err := json.Unmarshal(body, &wh); err != nil {
		return Event{}, errors.New("btcpay webhook: malformed JSON")
	}
	var want string
	switch wh.Type {
	case "InvoiceSettled":
		want = "Settled"
	case "InvoiceInvalid":
		want = "Invalid"
	default:
		return Event{}, nil
	}
	if wh.StoreID != b.StoreID {
		return Event{}, errors.New("btcpay webhook: another store's invoice")
	}
	if err := CheckReference(wh.InvoiceID); err != nil {
		return Event{}, fmt.Errorf("btcpay webhook: invoice id: %v", err)
	}
	var inv btcpayInvoice
	if err := b.call(ctx, "GET", "/invoices/"+url.PathEscape(wh.InvoiceID), nil, &inv); err != nil {
		return Event{}, err
	}
	if inv.Status != want || inv.ID != wh.InvoiceID {
		return Event{}, nil // the webhook is older than the invoice's state
	}
	if want == "Invalid" {
		return Event{Kind: Refunded, Reference: inv.ID}, nil
	}
	prod, err := b.Products.lookup(inv.Metadata.Product)
	if err != nil {
		return Event{}, err
	}
	cents, err := parseAmount(inv.Amount)
	if err != nil {
		return Event{}, fmt.Errorf("btcpay invoice: %v", err)
	}
	ev := Event{Kind: Paid, Reference: inv.ID, Account: inv.Metadata.OrderID, Product: inv.Metadata.Product,
		Days: prod.Days, AmountCents: cents, Currency: inv.Currency, Plan: prod.Plan}
	return ev, ev.Check()
}

// CreateInvoice creates an invoice for product in currency (empty: its
// first price), paid for the account whose payment reference is
// account, and returns its checkout link.
// redirect, if set, is where BTCPay sends the customer after paying.
func (b *BTCPay) CreateInvoice(ctx context.Context, account, product, currency, redirect string) (string, error) {
	prod, err := b.Products.lookup(product)
	if err != nil {
		return "", err
	}
	price, ok := prod.Price(currency)
	if !ok {
		return "", fmt.Errorf("product %s has no price in %s", product, currency)
	}
	req := map[string]any{
		"amount":   price.Amount(),
		"currency": price.Currency,
		"metadata": map[string]string{"orderId": account, "veilProduct": product},
	}
	if redirect != "" {
		req["checkout"] = map[string]any{"redirectURL": redirect}
	}
	var inv btcpayInvoice
	if err := b.call(ctx, "POST", "/invoices", req, &inv); err != nil {
		return "", err
	}
	if inv.CheckoutLink == "" {
		return "", fmt.Errorf("%w: the invoice came back without a checkout link", ErrUpstream)
	}
	return inv.CheckoutLink, nil
}

// call sends a Greenfield request about the store and decodes its answer.
func (b *BTCPay) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		j, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(j)
	}
	u := strings.TrimSuffix(b.URL, "/") + "/api/v1/stores/" + url.PathEscape(b.StoreID) + path
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUpstream, err)
	}
	req.Header.Set("Authorization", "token "+b.APIKey)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := b.Client
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUpstream, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %s %s answered %s", ErrUpstream, method, path, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
		return fmt.Errorf("%w: unreadable answer: %v", ErrUpstream, err)
	}
	return nil
}
