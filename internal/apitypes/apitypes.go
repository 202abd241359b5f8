// Package apitypes holds the JSON wire types shared by the control plane,
// the gateways and the client. Field names are a public contract: add
// fields freely, never rename them.
package apitypes

import "time"

// Error is the body of every non-2xx JSON answer.
type Error struct {
	// Error is a sentence written for the person reading it.
	Error string `json:"error"`
}

// SessionRequest is the body of POST /api/v1/sessions.
type SessionRequest struct {
	AccessCode string `json:"access_code"`
}

// Session is the answer to POST /api/v1/sessions.
type Session struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Account is what GET /api/v1/account shows to its holder.
type Account struct {
	Email            string     `json:"email,omitempty"`
	Plan             string     `json:"plan"`
	PaidUntil        *time.Time `json:"paid_until,omitempty"`
	TrialUntil       *time.Time `json:"trial_until,omitempty"`
	Active           bool       `json:"active"`
	MarketingConsent bool       `json:"marketing_consent"`
	Restricted       bool       `json:"restricted"`
	CreatedAt        time.Time  `json:"created_at"`
	Devices          int        `json:"devices"`
	MaxDevices       int        `json:"max_devices"`
	// PaymentReference is what to give a payment processor at checkout:
	// it names the account without the access code.
	PaymentReference string `json:"payment_reference"`
	// CheckoutURL is the operator's payment page for this account, if any.
	CheckoutURL string `json:"checkout_url,omitempty"`
	// PayLinks are the products' Stripe Payment Links for this account.
	PayLinks []PayLink `json:"pay_links,omitempty"`
	// Lang is the language of the account's mail ("de"); empty: English,
	// until the account is used on a page of the site.
	Lang string `json:"lang,omitempty"`
}

// PayLink is a product's checkout link, carrying the account's payment
// reference.
type PayLink struct {
	Product string `json:"product"`
	Name    string `json:"name"`
	URL     string `json:"url"`
}

// AccountPatch is the body of PATCH /api/v1/account. A nil field is left
// unchanged; an empty Email removes the email.
type AccountPatch struct {
	Email            *string `json:"email,omitempty"`
	MarketingConsent *bool   `json:"marketing_consent,omitempty"`
	Restricted       *bool   `json:"restricted,omitempty"`
	// Lang sets the language of the account's mail: a code of the site's
	// languages ("de"), or "" to clear it.
	Lang *string `json:"lang,omitempty"`
}

// AccountCreateRequest is the body of POST /api/v1/admin/accounts.
type AccountCreateRequest struct {
	// Days of paid time; zero gives the configured trial instead.
	Days  int    `json:"days,omitempty"`
	Email string `json:"email,omitempty"`
}

// AccountCreated answers an account creation. The access code is shown
// here once and never again.
type AccountCreated struct {
	AccessCode string  `json:"access_code"`
	Account    Account `json:"account"`
}

// DeviceRequest is the body of POST /api/v1/devices and of
// PUT /api/v1/devices/{id} (key rotation).
type DeviceRequest struct {
	PublicKey string `json:"public_key"`
	Name      string `json:"name,omitempty"`
	// Block lists DNS blocking categories (see BlockCategories); only on
	// creation, PATCH changes it later.
	Block []string `json:"block,omitempty"`
}

// DevicePatch is the body of PATCH /api/v1/devices/{id}. A nil field is
// left unchanged.
type DevicePatch struct {
	// Name renames the device.
	Name *string `json:"name,omitempty"`
	// Block replaces the device's DNS blocking categories; [] clears them.
	Block *[]string `json:"block,omitempty"`
}

// BlockCategories are the DNS blocking categories a device may choose. The
// gateways' resolvers answer names on the operator's lists for a chosen
// category with NXDOMAIN.
var BlockCategories = []string{"ads", "trackers", "malware", "adult", "gambling"}

// Device is one registered WireGuard key and its tunnel addresses.
type Device struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	PublicKey string    `json:"public_key"`
	IPv4      string    `json:"ipv4"` // with prefix length, e.g. "10.64.0.2/32"
	IPv6      string    `json:"ipv6"` // e.g. "fd7a:7665:696c::2/128"
	Block     []string  `json:"block"`
	CreatedAt time.Time `json:"created_at"`
	// KeyCreatedAt is when the current key was registered: CreatedAt or
	// the last rotation.
	KeyCreatedAt time.Time `json:"key_created_at"`
	// Kind is "extension" for a browser extension's device, which reaches
	// the gateways' HTTPS proxy instead of WireGuard; empty otherwise.
	Kind string `json:"kind,omitempty"`
}

// DeviceKindExtension is Device.Kind of a browser extension's device.
const DeviceKindExtension = "extension"

// ExtensionRequest is the body of POST /api/v1/extension: a browser
// extension registering itself as a device of the account.
type ExtensionRequest struct {
	Name string `json:"name,omitempty"`
}

// ExtensionCredential answers POST /api/v1/extension: the device and the
// credential for the gateways' HTTPS proxies (Proxy-Authorization Basic
// ProxyUser:ProxyPassword). The password is shown here once; the control
// plane keeps only its SHA-256.
type ExtensionCredential struct {
	Device        Device `json:"device"`
	ProxyUser     string `json:"proxy_user"`
	ProxyPassword string `json:"proxy_password"`
}

// Server is one gateway in the public list, GET /api/v1/servers.
type Server struct {
	Name     string `json:"name"`
	Location string `json:"location"` // "CC-city", e.g. "se-sto"
	Country  string `json:"country"`  // "CC" in lower case
	Endpoint string `json:"endpoint"` // HOST:PORT of the WireGuard listener
	// EndpointAddrs are Endpoint's host name resolved by the control
	// plane, as ADDR:PORT; absent when Endpoint holds an address. A
	// tun-mode client reconnecting uses them: its DNS is behind the
	// tunnel then.
	EndpointAddrs []string `json:"endpoint_addrs,omitempty"`
	PublicKey     string   `json:"public_key,omitempty"`
	// TLSPort and QUICPort are where, on Endpoint's host, the gateway
	// also takes WireGuard over TLS (TCP) and over QUIC (UDP), for
	// networks that block WireGuard; absent when it does not.
	TLSPort  int `json:"tls_port,omitempty"`
	QUICPort int `json:"quic_port,omitempty"`
	// CertPin is the base64 SHA-256 of the public key of the certificate
	// the gateway presents on both: a client accepts no other.
	CertPin string `json:"cert_pin,omitempty"`
	// TunnelIPv4 and TunnelIPv6 are the gateway's own addresses inside
	// the tunnel, where its DNS resolver answers.
	TunnelIPv4 string `json:"tunnel_ipv4"`
	TunnelIPv6 string `json:"tunnel_ipv6"`
	// Proxy is HOST:PORT of the gateway's HTTPS proxy for the browser
	// extension (TLS, then HTTP CONNECT with Proxy-Authorization);
	// absent when the gateway runs none.
	Proxy string `json:"proxy,omitempty"`
	// Load is connected peers as a share of capacity, 0–100.
	Load   int  `json:"load"`
	Online bool `json:"online"`
}

// GatewayCreateRequest is the body of POST /api/v1/admin/gateways.
type GatewayCreateRequest struct {
	Name     string `json:"name"`
	Location string `json:"location"`
	Endpoint string `json:"endpoint"`
}

// GatewayCreated answers a gateway registration; the token is shown once.
type GatewayCreated struct {
	Token  string `json:"token"`
	Server Server `json:"server"`
}

// GatewayReport is what a gateway sends to POST /api/v1/gateway/report:
// its key and aggregate load. Nothing per peer, ever (promise P3).
type GatewayReport struct {
	PublicKey string `json:"public_key"`
	// Egress are the addresses the gateway's traffic leaves from (its
	// own, at most MaxEgress), by which My IP and the DNS leak test
	// recognise it when they differ from its endpoint.
	Egress []string `json:"egress,omitempty"`
	// TLSPort, QUICPort and CertPin are as in Server; zero and empty
	// when the gateway offers neither transport.
	TLSPort  int    `json:"tls_port,omitempty"`
	QUICPort int    `json:"quic_port,omitempty"`
	CertPin  string `json:"cert_pin,omitempty"`
	// ProxyPort is the port of its HTTPS proxy; 0: none.
	ProxyPort int    `json:"proxy_port,omitempty"`
	Peers     int    `json:"peers"`
	RxBytes   uint64 `json:"rx_bytes"`
	TxBytes   uint64 `json:"tx_bytes"`
}

// MaxEgress is the most egress addresses a gateway reports.
const MaxEgress = 16

// GatewayConfig answers a report: what the gateway needs to know about
// itself from the control plane.
type GatewayConfig struct {
	Name       string `json:"name"`
	TunnelIPv4 string `json:"tunnel_ipv4"` // gateway address with pool prefix, "10.64.0.1/10"
	TunnelIPv6 string `json:"tunnel_ipv6"` // "fd7a:7665:696c::1/64"
}

// Peer is one entry of the peer map.
type Peer struct {
	PublicKey  string   `json:"public_key"`
	AllowedIPs []string `json:"allowed_ips"` // "10.64.0.2/32", "fd7a:…::2/128"
	Plan       string   `json:"plan"`
	// Block lists the DNS blocking categories the gateway's resolver
	// applies to this peer.
	Block []string `json:"block,omitempty"`
	// ProxyHash is set for a browser extension's device: the hex SHA-256
	// of its HTTPS proxy credential. Such an entry has no allowed IPs and
	// is never a WireGuard peer.
	ProxyHash string `json:"proxy_hash,omitempty"`
}

// PeerMap answers GET /api/v1/gateway/peers?since=V.
//
// When Full is true, Peers is the whole map and the gateway drops any peer
// not in it. Otherwise Peers holds added or changed peers and Removed the
// public keys that left since version Since.
//
// Plans gives the limits of the plan classes that have any, by the name
// peers carry in Plan; it comes before Peers, in every answer, and a
// class it does not name is not limited.
type PeerMap struct {
	Version int64                 `json:"version"`
	Full    bool                  `json:"full"`
	Plans   map[string]PlanLimits `json:"plans,omitempty"`
	Peers   []Peer                `json:"peers"`
	Removed []string              `json:"removed,omitempty"`
}

// PlanLimits are what a gateway enforces on a plan class's devices.
type PlanLimits struct {
	// BandwidthBps caps each device, in bits per second, in each
	// direction; 0: no cap.
	BandwidthBps int64 `json:"bandwidth_bps,omitempty"`
}

// ClientReport is the body of POST /api/v1/client-report: the client's OS
// and app version, counted per day in aggregate only, never linked to an
// account, a device or an address (promise P6).
type ClientReport struct {
	OSVersion  string `json:"os_version"`  // "linux 6.1", "windows 11"
	AppVersion string `json:"app_version"` // "1.4.2", "dev"
}

// BillingRecord is one stored payment, for the operator's accounts
// (GET /api/v1/admin/billing). Account is 0 when the record is detached.
type BillingRecord struct {
	ID          int64      `json:"id"`
	Account     int64      `json:"account,omitempty"`
	Processor   string     `json:"processor"`
	Reference   string     `json:"reference"`
	Product     string     `json:"product"`
	Days        int        `json:"days"`
	AmountCents int64      `json:"amount_cents"`
	Currency    string     `json:"currency"`
	CreatedAt   time.Time  `json:"created_at"`
	RefundedAt  *time.Time `json:"refunded_at,omitempty"`
}

// BillingAttachRequest is the body of POST /api/v1/admin/billing/{id}/attach:
// the payment reference of the account a detached payment belongs to.
type BillingAttachRequest struct {
	PaymentReference string `json:"payment_reference"`
}

// InvoiceRequest is the body of POST /api/v1/billing/btcpay/invoice: the
// product the account buys, and where BTCPay sends the customer after
// paying (optional).
type InvoiceRequest struct {
	Product     string `json:"product"`
	RedirectURL string `json:"redirect_url,omitempty"`
	// Currency is one of the product's currencies; empty: its first.
	Currency string `json:"currency,omitempty"`
}

// Invoice is the answer: the processor's payment page for the invoice.
type Invoice struct {
	CheckoutLink string `json:"checkout_link"`
}
