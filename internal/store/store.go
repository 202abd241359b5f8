// Package store keeps Veil's durable state: accounts, devices, sessions,
// gateways and the peer-map version. It runs on SQLite (embedded, the
// default) and on PostgreSQL; both pass the same conformance suite in
// storetest.
//
// Nothing here ever holds a client IP address, a DNS name or a
// destination: see the data inventory in package privacy.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors callers branch on.
var (
	ErrNotFound       = errors.New("not found")
	ErrDeviceLimit    = errors.New("device limit reached")
	ErrPoolExhausted  = errors.New("tunnel address pool exhausted")
	ErrDuplicateKey   = errors.New("public key already registered")
	ErrDuplicateName  = errors.New("name already in use")
	ErrSchemaTooNew   = errors.New("database schema is newer than this binary")
	ErrCodeCollision  = errors.New("access code hash already exists")
	ErrInvalidSession = errors.New("session unknown or expired")
	ErrRecoveryLimit  = errors.New("too many unexpired recovery links")
)

// Plan names.
const (
	PlanFree    = "free"
	PlanPremium = "premium"
)

// Account is a customer. The access code itself is never stored, only its
// keyed hash.
type Account struct {
	ID               int64
	CodeHash         []byte
	Email            string // empty when none was given
	Plan             string
	PaidUntil        time.Time // zero when never paid
	TrialUntil       time.Time // zero when no trial
	MarketingConsent bool
	Restricted       bool
	// LegalHold suspends every retention deletion of the account and its
	// support tickets.
	LegalHold bool
	// LastUsed is the day (midnight UTC) of the last login; zero: never.
	LastUsed  time.Time
	CreatedAt time.Time
	// Lang is the language of the account's mail, a code of the site's
	// languages (i18n.Langs): the one the account last used a page in;
	// empty when it never did.
	Lang string
}

// Active reports whether the account may hold tunnels at time now.
func (a *Account) Active(now time.Time) bool {
	return now.Before(a.PaidUntil) || now.Before(a.TrialUntil)
}

// AccountUpdate changes an account. A nil field is left unchanged.
type AccountUpdate struct {
	Email            *string
	Plan             *string
	PaidUntil        *time.Time
	TrialUntil       *time.Time
	MarketingConsent *bool
	Restricted       *bool
	LegalHold        *bool
	CodeHash         []byte  // nil: unchanged
	Lang             *string // "": none
}

// Payment is a payment a processor reported. Veil never sees card data.
type Payment struct {
	// AccountID is the account it pays for; 0 when none is known.
	AccountID int64
	// Processor and Reference name the payment at the processor.
	Processor, Reference string
	// Product is what was bought ("premium-30"); Days the paid time.
	Product string
	Days    int
	// AmountCents and Currency ("EUR") are what was paid.
	AmountCents int64
	Currency    string
	// Plan is the plan class the paid time is on; empty: premium. Not
	// kept in the record: the account's plan holds it.
	Plan string
	// AffiliatePercent is the share of the amount credited to the
	// affiliate that referred the account, if any; not kept in the record.
	AffiliatePercent int
}

// BillingRecord is a stored payment.
type BillingRecord struct {
	ID int64
	Payment
	CreatedAt time.Time
	// RefundedAt is when the payment was refunded; zero if it was not.
	RefundedAt time.Time
}

// Device is one WireGuard key of an account. AddrIndex is the host index in
// both tunnel pools: the device's IPv4 and IPv6 addresses are the pools'
// bases plus AddrIndex, so one unique index gives two unique addresses.
type Device struct {
	ID        int64
	AccountID int64
	Name      string
	PublicKey string // base64, as wg(8) prints it
	AddrIndex int64
	// Block lists the DNS blocking categories the device chose ("ads",
	// "trackers", …), applied by the gateways' resolvers.
	Block     []string
	CreatedAt time.Time
	// KeyCreatedAt is when PublicKey was registered: CreatedAt, or the
	// last rotation.
	KeyCreatedAt time.Time
	// ProxyHash is set on a browser extension's device: the hex SHA-256
	// of the credential it gives the gateways' HTTPS proxy. Such a
	// device's WireGuard key is a random one nobody holds.
	ProxyHash string
}

// NewDevice is a registration request as the store sees it.
type NewDevice struct {
	AccountID int64
	Name      string
	PublicKey string
	// MaxDevices bounds the account's device count, checked in the same
	// transaction as the insert so concurrent registrations cannot exceed it.
	MaxDevices int
	// MinIndex and MaxIndex bound AddrIndex (inclusive); the lowest free
	// index is taken so addresses freed by deletion are reused.
	MinIndex, MaxIndex int64
	// Block is the device's DNS blocking categories.
	Block []string
	// ProxyHash makes the device a browser extension's (Device.ProxyHash).
	ProxyHash string
}

// Session is a bearer token's record; only the token's hash is stored.
type Session struct {
	TokenHash []byte
	AccountID int64
	ExpiresAt time.Time
}

// RecoveryToken is a mailed one-time link for a lost access code; only
// the token's hash is stored.
type RecoveryToken struct {
	TokenHash []byte
	AccountID int64
	ExpiresAt time.Time
}

// Gateway is a registered WireGuard gateway and its aggregate load.
type Gateway struct {
	ID        int64
	Name      string
	Location  string // "cc-city"
	Endpoint  string // host:port
	TokenHash []byte
	PublicKey string // empty until the gateway first reports
	Builtin   bool   // the gateway that `veil serve` runs itself
	Peers     int
	RxBytes   uint64
	TxBytes   uint64
	LastSeen  time.Time // zero: never reported
	CreatedAt time.Time
	// Egress are the addresses its traffic leaves from, as last reported.
	Egress []string
	// TLSPort and QUICPort are where it also takes WireGuard over TLS
	// and QUIC, 0 when it does not; CertPin is its certificate's pin.
	// As last reported.
	TLSPort, QUICPort int
	CertPin           string
	// ProxyPort is the port of its HTTPS proxy, as last reported; 0: none.
	ProxyPort int
}

// GatewayLoad is an aggregate report from a gateway (promise P3: nothing
// per peer).
type GatewayLoad struct {
	PublicKey string
	Egress    []string // the gateway's own addresses, not a peer's
	// TLSPort, QUICPort and CertPin say where it takes WireGuard over TLS
	// and QUIC and which certificate key it presents.
	TLSPort, QUICPort int
	CertPin           string
	ProxyPort         int // its HTTPS proxy's port; 0: none
	Peers             int
	RxBytes           uint64
	TxBytes           uint64
	At                time.Time
}

// Peer is one entry of the peer map: an active account's device.
type Peer struct {
	PublicKey string
	AddrIndex int64
	Plan      string
	Block     []string
	ProxyHash string // a browser extension's proxy credential hash (Device.ProxyHash)
}

// PeerChanges is the peer map since a version. When Full is set, Peers is
// the whole map and Removed is empty.
type PeerChanges struct {
	Version int64
	Full    bool
	Peers   []Peer   // added or changed since the asked version (all, when Full)
	Removed []string // public keys removed since the asked version
}

// Store is the durable state. Every method is safe for concurrent use.
// Methods that change the peer map (device create, delete, rekey; account
// delete; activity changes found by SyncPeerActivity) bump the peer-map
// version in the same transaction and wake Watch subscribers, in this and,
// on PostgreSQL, every other process using the same database.
type Store interface {
	// CreateAccount inserts a new account; ErrCodeCollision when the hash
	// exists (the caller draws a new code).
	CreateAccount(ctx context.Context, a *Account) (int64, error)
	// AccountByID returns the account or ErrNotFound.
	AccountByID(ctx context.Context, id int64) (*Account, error)
	// AccountByCodeHash returns the account or ErrNotFound.
	AccountByCodeHash(ctx context.Context, hash []byte) (*Account, error)
	// UpdateAccount applies u; a change of paid or trial time is reflected in
	// the peer map by the next SyncPeerActivity (a payment's at once).
	UpdateAccount(ctx context.Context, id int64, u AccountUpdate) error
	// DeleteAccount removes the account with its devices and sessions; its
	// devices leave the peer map.
	DeleteAccount(ctx context.Context, id int64) error
	// CountAccounts returns the number of accounts.
	CountAccounts(ctx context.Context) (int, error)

	// CreateDevice registers a device, enforcing MaxDevices and allocating
	// the lowest free AddrIndex in [MinIndex, MaxIndex]. Errors:
	// ErrDeviceLimit, ErrPoolExhausted, ErrDuplicateKey, ErrNotFound (no
	// such account).
	CreateDevice(ctx context.Context, d NewDevice) (*Device, error)
	// Devices lists an account's devices by id.
	Devices(ctx context.Context, accountID int64) ([]Device, error)
	// DeleteDevice removes one of the account's devices, or ErrNotFound.
	DeleteDevice(ctx context.Context, accountID, deviceID int64) error
	// RekeyDevice replaces a device's public key, keeping its addresses.
	RekeyDevice(ctx context.Context, accountID, deviceID int64, publicKey string) (*Device, error)
	// RenameDevice changes a device's name, or ErrNotFound.
	RenameDevice(ctx context.Context, accountID, deviceID int64, name string) (*Device, error)
	// SetDeviceBlock replaces a device's DNS blocking categories; the peer
	// map carries the change to the gateways.
	SetDeviceBlock(ctx context.Context, accountID, deviceID int64, block []string) (*Device, error)

	// CreateSession stores a session opened at now; the account's
	// oldest beyond MaxSessions ends, and now's day, nothing finer,
	// becomes the account's last use.
	CreateSession(ctx context.Context, s Session, now time.Time) error
	// SessionByTokenHash returns a live session or ErrInvalidSession.
	SessionByTokenHash(ctx context.Context, hash []byte, now time.Time) (*Session, error)
	// DeleteSession removes one session (logout).
	DeleteSession(ctx context.Context, hash []byte) error
	// DeleteExpiredSessions removes sessions expired at now.
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error)

	// CreateRecoveryToken stores a recovery link's token; ErrNotFound for
	// no such account, ErrRecoveryLimit when it has MaxRecoveryLinks
	// unexpired at now.
	CreateRecoveryToken(ctx context.Context, t RecoveryToken, now time.Time) error
	// RecoveryTokenByHash returns a token unexpired at now, or ErrNotFound.
	RecoveryTokenByHash(ctx context.Context, hash []byte, now time.Time) (*RecoveryToken, error)
	// UseRecoveryToken spends a token: the account's code hash becomes
	// codeHash, its sessions and links end; see sqlStore.UseRecoveryToken.
	UseRecoveryToken(ctx context.Context, hash, codeHash []byte, now time.Time) (accountID int64, err error)
	// DeleteExpiredRecoveryTokens removes the links expired at now.
	DeleteExpiredRecoveryTokens(ctx context.Context, now time.Time) (int, error)

	// CreateGateway registers a gateway; ErrDuplicateName when taken.
	CreateGateway(ctx context.Context, g *Gateway) (int64, error)
	// Gateways lists all gateways by name.
	Gateways(ctx context.Context) ([]Gateway, error)
	// GatewayByTokenHash returns the gateway or ErrNotFound.
	GatewayByTokenHash(ctx context.Context, hash []byte) (*Gateway, error)
	// GatewayByName returns the gateway or ErrNotFound.
	GatewayByName(ctx context.Context, name string) (*Gateway, error)
	// UpdateGateway changes a gateway's location, endpoint and token hash.
	UpdateGateway(ctx context.Context, g *Gateway) error
	// ReportGatewayLoad records a gateway's key and aggregate load.
	ReportGatewayLoad(ctx context.Context, id int64, l GatewayLoad) error
	// DeleteGateway removes a gateway by name.
	DeleteGateway(ctx context.Context, name string) error
	// GatewaySynced records that the gateway holds the peer map at
	// version (the since of its poll). Tombstones go once every gateway
	// synced within the history age holds them, at once when none did;
	// ErrNotFound for no such gateway.
	GatewaySynced(ctx context.Context, id, version int64) error

	// PeersSince returns the peer map changes after version since, or the
	// full map when since is 0 or older than the retained history.
	PeersSince(ctx context.Context, since int64) (*PeerChanges, error)
	// StreamPeers reads the same from one snapshot, handing each peer to
	// fn as it is read (constant memory for any map); fn's PeerChanges
	// has the version and fullness. It returns the removals, no peers.
	StreamPeers(ctx context.Context, since int64, fn func(*PeerChanges, Peer) error) (*PeerChanges, error)
	// PeerVersion returns the current peer-map version.
	PeerVersion(ctx context.Context) (int64, error)
	// SyncPeerActivity brings the peer map in line with account activity at
	// now (trial or paid time starting or ending), returning how many
	// devices entered or left it. Safe to run from several processes.
	SyncPeerActivity(ctx context.Context, now time.Time) (int, error)
	// SetFreePlan sets whether, and with how many devices, accounts
	// without paid or trial time stay in the peer map on the free plan;
	// off until set. Registration and SyncPeerActivity follow it.
	SetFreePlan(f FreePlan)
	// Watch returns a channel that receives the new peer-map version after
	// every change, from any process on the same database, until ctx ends.
	// Slow receivers may miss intermediate versions, never the latest.
	Watch(ctx context.Context) <-chan int64

	// Schema lists every table of the live database with its columns, so a
	// test can compare it with the data inventory. Bookkeeping tables of
	// the store itself (the migration version) are included.
	Schema(ctx context.Context) (map[string][]string, error)

	// Close releases the database.
	Close() error

	// --- Privacy engine (docs/privacy.md): retention, rights, mail, support,
	// client counters and policy versions. Types in privacy.go. ---

	// AccountsByEmail returns the accounts holding email (compared without
	// case), by id.
	AccountsByEmail(ctx context.Context, email string) ([]Account, error)
	// AccountsWithEmail returns every account that has an email, by id.
	AccountsWithEmail(ctx context.Context) ([]Account, error)
	// AccountRows returns every stored row that belongs to the account,
	// by table, each row mapping column to value (times as UTC time.Time,
	// flags as bool, binary as hex), for the right of access: a column
	// added later is exported without changing the exporter. ErrNotFound
	// when there is no such account.
	AccountRows(ctx context.Context, accountID int64) (map[string][]map[string]any, error)
	// DeleteUnusedAccounts removes the accounts not on legal hold whose
	// paid time, trial time, last use and creation all lie before cutoff,
	// with everything that cascades; their devices leave the peer map. It
	// returns how many went.
	DeleteUnusedAccounts(ctx context.Context, cutoff time.Time) (int, error)
	// PrunePeerHistory deletes peer-map tombstones of keys removed before
	// cutoff and those every gateway synced since cutoff holds (raising
	// the history floor so that gateways behind it get the full map),
	// returning how many went.
	PrunePeerHistory(ctx context.Context, cutoff time.Time) (int, error)

	// PublishPolicy stores a new policy version; it fills in p.ID.
	PublishPolicy(ctx context.Context, p *PolicyVersion) (int64, error)
	// PolicyVersions lists every published version, oldest first.
	PolicyVersions(ctx context.Context) ([]PolicyVersion, error)

	// QueueMail adds a message to the outbox; it fills in m.ID. A message
	// for an unknown account gives ErrNotFound and queues nothing.
	QueueMail(ctx context.Context, m *Mail) (int64, error)
	// DueMail returns up to limit messages whose next attempt is due at now,
	// earliest due first (a retried message goes behind newer ones).
	DueMail(ctx context.Context, now time.Time, limit int) ([]Mail, error)
	// AccountMail returns the account's messages waiting in the outbox.
	AccountMail(ctx context.Context, accountID int64) ([]Mail, error)
	// DeleteMail removes a message (sent, or given up); removing an
	// unknown one is not an error.
	DeleteMail(ctx context.Context, id int64) error
	// RetryMail records a failed attempt and when to try next.
	RetryMail(ctx context.Context, id int64, attempts int, next time.Time) error
	// DeleteMailBefore removes messages queued before cutoff (never sent),
	// returning how many went.
	DeleteMailBefore(ctx context.Context, cutoff time.Time) (int, error)

	// CreateTicket stores a ticket with its first message; it fills in
	// t.ID. ErrNotFound when t.AccountID names no account.
	CreateTicket(ctx context.Context, t *Ticket, first TicketMessage) (int64, error)
	// AddTicketMessage appends a message and sets the ticket's status,
	// or ErrNotFound.
	AddTicketMessage(ctx context.Context, ticketID int64, m TicketMessage, status string) error
	// Ticket returns a ticket with its messages, or ErrNotFound.
	Ticket(ctx context.Context, id int64) (*Ticket, error)
	// TicketByTokenHash returns a ticket with its messages, or ErrNotFound.
	TicketByTokenHash(ctx context.Context, hash []byte) (*Ticket, error)
	// Tickets lists tickets without messages, newest activity first; an
	// empty status lists all.
	Tickets(ctx context.Context, status string) ([]Ticket, error)
	// AccountTickets returns the account's tickets with their messages.
	AccountTickets(ctx context.Context, accountID int64) ([]Ticket, error)
	// DeleteSupportBefore removes messages written before cutoff and
	// tickets without activity since, except those of accounts on legal
	// hold, returning how many of each went.
	DeleteSupportBefore(ctx context.Context, cutoff time.Time) (tickets, messages int, err error)

	// CountClient adds one to the aggregate count of (day, osVersion,
	// appVersion); day is YYYY-MM-DD.
	CountClient(ctx context.Context, day, osVersion, appVersion string) error
	// ClientCounts lists the counts by day, OS version and app version.
	ClientCounts(ctx context.Context) ([]ClientCount, error)
	// DeleteClientCountsBefore removes the counts of days before day,
	// returning how many rows went.
	DeleteClientCountsBefore(ctx context.Context, day string) (int, error)

	// RecordPayment stores a payment once and extends the account's paid
	// time; see sqlStore.RecordPayment.
	RecordPayment(ctx context.Context, p Payment, now time.Time) (applied bool, err error)
	// BillingRecords lists the records made in [from, to), oldest first;
	// a zero bound is open. AccountID is 0 for a detached record.
	BillingRecords(ctx context.Context, from, to time.Time) ([]BillingRecord, error)
	// AttachPayment gives a detached record's payment to an account,
	// crediting its affiliate affiliatePercent of it; ErrNotFound for no
	// such record or account, ErrAttached for a record that has its
	// account.
	AttachPayment(ctx context.Context, recordID, accountID int64, affiliatePercent int, now time.Time) error
	// RefundPayment marks a payment refunded and takes back the paid time
	// it bought; applied is false for one already refunded. The refund of
	// a payment not recorded yet is kept, and the payment, when it comes,
	// is recorded refunded and buys nothing.
	RefundPayment(ctx context.Context, processor, reference string, now time.Time) (applied bool, err error)
	// DeleteBillingBefore removes billing records made before cutoff, and
	// refunds told before cutoff whose payment never came.
	DeleteBillingBefore(ctx context.Context, cutoff time.Time) (int, error)

	// --- Sign-up business: vouchers, affiliates, expiry reminders
	// (vouchers.go, affiliate.go, reminders.go). ---

	// CreateVouchers stores vouchers by their code hashes, each worth days.
	CreateVouchers(ctx context.Context, hashes [][]byte, days int, now time.Time) error
	// RedeemVoucher spends the voucher whose code hash is hash for the
	// account, once: it is marked redeemed and recorded as a payment of p
	// (Days taken from the voucher) in one transaction. ErrVoucherInvalid
	// for an unknown or spent voucher.
	RedeemVoucher(ctx context.Context, hash []byte, p Payment, now time.Time) (days int, err error)

	// JoinAffiliate makes the account an affiliate with code, or returns
	// its existing affiliate; ErrDuplicateName when code is taken.
	JoinAffiliate(ctx context.Context, accountID int64, code string, now time.Time) (*Affiliate, error)
	// AffiliateByAccount returns the account's affiliate or ErrNotFound.
	AffiliateByAccount(ctx context.Context, accountID int64) (*Affiliate, error)
	// AffiliateByCode returns the affiliate with code or ErrNotFound.
	AffiliateByCode(ctx context.Context, code string) (*Affiliate, error)
	// Affiliates lists every affiliate with its numbers, by code.
	Affiliates(ctx context.Context) ([]Affiliate, error)
	// Refer links a new account to the affiliate that referred it.
	Refer(ctx context.Context, accountID, affiliateID int64, now time.Time) error
	// RecordPayout records a payout to an affiliate; ErrNotFound for no
	// such affiliate.
	RecordPayout(ctx context.Context, affiliateID int64, amountCents int64, currency string, now time.Time) error

	// ExpiringAccounts returns accounts with an email whose paid time ends
	// within (now, before] and that had no reminder for that end yet.
	ExpiringAccounts(ctx context.Context, now, before time.Time) ([]Account, error)
	// MarkReminded records that the reminder for the paid time ending at
	// paidUntil was queued; false when it was already (another process
	// took it) or the paid time has moved.
	MarkReminded(ctx context.Context, accountID int64, paidUntil time.Time) (bool, error)
}

// ErrVoucherInvalid is the answer to a voucher code that is unknown or
// already redeemed.
var ErrVoucherInvalid = errors.New("voucher unknown or already redeemed")

// Affiliate is an account in the affiliate program and what it may see:
// numbers and balances, never who.
type Affiliate struct {
	AccountID int64
	Code      string
	CreatedAt time.Time
	// Signups is how many accounts signed up through its link (erased
	// ones included), Payments how many of their payments credited it.
	Signups, Payments int
	// Balances is the amount owed per currency: credits less reversals
	// and payouts, in cents.
	Balances map[string]int64
}
