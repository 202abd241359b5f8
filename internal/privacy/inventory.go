// Package privacy is Veil's privacy engine. One declaration, Inventory,
// lists every category of data the service stores; from it come the
// privacy policy (Render), the retention sweeper (Sweeper), the right of
// access (Export), and the schema test that fails when the database holds
// a table or column the inventory does not declare, or declares one the
// database lacks. Published policies are kept as versions whose
// differences can be shown (Diff).
package privacy

import (
	"fmt"
	"strings"
	"time"
)

// Rule names a retention rule; the sweeper implements each one.
type Rule string

// Retention rules. Every category has exactly one.
const (
	// RuleUnusedAccount: an account goes once its paid time, trial time
	// and last use are all older than Periods.UnusedAccount.
	RuleUnusedAccount Rule = "unused-account"
	// RuleWithAccount: goes with its account, or earlier when the person
	// deletes it.
	RuleWithAccount Rule = "with-account"
	// RuleSessionExpiry: goes when the session expires.
	RuleSessionExpiry Rule = "session-expiry"
	// RuleLinkExpiry: goes when the link is used or expires, at most
	// RecoveryLinkTTL after it was mailed.
	RuleLinkExpiry Rule = "link-expiry"
	// RuleSupport: messages go SupportRetention after they were written,
	// tickets when their last message has gone.
	RuleSupport Rule = "support"
	// RuleOutbox: a message goes once sent; undeliverable mail after
	// OutboxRetention.
	RuleOutbox Rule = "outbox"
	// RuleTax: billing records are kept Periods.TaxYears, as tax law
	// requires, then deleted.
	RuleTax Rule = "tax"
	// RuleCounters: aggregate counts go after CounterRetention.
	RuleCounters Rule = "counters"
	// RulePeerHistory: keys of removed devices go after PeerHistory.
	RulePeerHistory Rule = "peer-history"
	// RuleOperator: kept until the operator removes it.
	RuleOperator Rule = "operator"
	// RuleForever: kept for as long as the service runs.
	RuleForever Rule = "forever"
)

// Fixed retention periods.
const (
	SupportMonths    = 6
	OutboxRetention  = 7 * 24 * time.Hour
	CounterRetention = 2 * 365 * 24 * time.Hour
	PeerHistory      = 24 * time.Hour
	// RecoveryLinkTTL is how long a mailed link for a lost access code
	// stays usable.
	RecoveryLinkTTL = time.Hour
)

// Periods are the retention periods the operator configures.
type Periods struct {
	// UnusedAccount is how long an account without paid or trial time
	// and without a login is kept.
	UnusedAccount time.Duration
	// TaxYears is how long billing records are kept.
	TaxYears int
	// BackupDays is how long the operator keeps backups of the database,
	// which hold erased data until they go; 0: the operator keeps none.
	BackupDays int
}

// DefaultPeriods are the periods used when the operator sets none.
var DefaultPeriods = Periods{UnusedAccount: 90 * 24 * time.Hour, TaxYears: 7}

// Field is one stored column, "table.column", and what it holds.
type Field struct {
	Column  string
	Meaning string
}

// Category is one kind of stored data.
type Category struct {
	// ID is the category's stable key, also its key in the export.
	ID   string
	Name string
	// Fields are the columns that hold it. A category with none is
	// declared but not stored yet (its note says why).
	Fields     []Field
	Purpose    string
	LegalBasis string
	Retention  Rule
	Storage    string
	// SharedWith lists who else receives it; empty: nobody.
	SharedWith []string
	// PerAccount: the data belongs to one account, so the export holds it.
	PerAccount bool
	// Note adds what a reader should know.
	Note string
}

const (
	basisContract  = "Contract: needed to provide the service you asked for (GDPR Art. 6(1)(b))."
	basisConsent   = "Consent, which you can withdraw at any time (GDPR Art. 6(1)(a))."
	basisLegal     = "Legal obligation: tax and accounting law (GDPR Art. 6(1)(c))."
	basisInterest  = "Legitimate interest in running and planning the service, with no data about any person (GDPR Art. 6(1)(f))."
	storageDB      = "The service's database (SQLite or PostgreSQL) on the operator's servers."
	storageDBGates = "The service's database; the gateways hold it in memory only."
)

// Inventory is every category of data Veil stores. Nothing else is
// stored: the schema test compares this list with the live database.
var Inventory = []Category{
	{
		ID:   "account",
		Name: "Account",
		Fields: []Field{
			{"accounts.id", "internal number of the account"},
			{"accounts.code_hash", "keyed hash of your access code (the code itself is never stored)"},
			{"accounts.email", "your email, only if you gave one: receipts, access-code recovery, marketing if you agree"},
			{"accounts.plan", "free or premium"},
			{"accounts.paid_until", "end of the paid time"},
			{"accounts.trial_until", "end of the trial"},
			{"accounts.marketing_consent", "whether you agreed to marketing mail"},
			{"accounts.restricted", "whether you restricted processing"},
			{"accounts.legal_hold", "whether a legal obligation suspends deletion"},
			{"accounts.last_used", "the day (no time) of your last login, to find unused accounts"},
			{"accounts.created_at", "when the account was created"},
		},
		Purpose:    "To provide the VPN you subscribed to, and to reach you by email if you gave one.",
		LegalBasis: basisContract + " The email and marketing mail: " + basisConsent,
		Retention:  RuleUnusedAccount,
		Storage:    storageDB,
		PerAccount: true,
	},
	{
		ID:   "devices",
		Name: "Devices",
		Fields: []Field{
			{"devices.id", "internal number of the device"},
			{"devices.account_id", "the account it belongs to"},
			{"devices.name", "the name you gave it"},
			{"devices.public_key", "its WireGuard public key"},
			{"devices.addr_index", "its place in the tunnel address pools (its private tunnel addresses)"},
			{"devices.block", "the DNS blocking categories you chose for it"},
			{"devices.in_map", "whether gateways currently accept it"},
			{"devices.free", "whether it connects on the free plan (derived from your paid time), so gateways cap its bandwidth"},
			{"devices.peer_version", "bookkeeping for gateway synchronisation"},
			{"devices.created_at", "when it was registered"},
		},
		Purpose:    "To let your devices connect: gateways accept a key only when its account is active.",
		LegalBasis: basisContract,
		Retention:  RuleWithAccount,
		Storage:    storageDBGates,
		SharedWith: []string{"the operator's gateways (key, tunnel addresses, plan, blocking choice; in memory, never with any traffic record)"},
		PerAccount: true,
	},
	{
		ID:   "sessions",
		Name: "Login sessions",
		Fields: []Field{
			{"sessions.token_hash", "keyed hash of the session token"},
			{"sessions.account_id", "the account logged in"},
			{"sessions.expires_at", "when the session ends"},
		},
		Purpose:    "To keep you logged in to the app and the account page.",
		LegalBasis: basisContract,
		Retention:  RuleSessionExpiry,
		Storage:    storageDB,
		PerAccount: true,
	},
	{
		ID:   "recovery",
		Name: "Access-code recovery links",
		Fields: []Field{
			{"recovery_tokens.token_hash", "keyed hash of the one-time link mailed to you (the link itself is not stored)"},
			{"recovery_tokens.account_id", "the account whose email asked for it"},
			{"recovery_tokens.expires_at", "when the link stops working"},
		},
		Purpose:    "To let the holder of your email set a new access code when the old one is lost; the old code works until the link is used.",
		LegalBasis: basisContract,
		Retention:  RuleLinkExpiry,
		Storage:    storageDB,
		PerAccount: true,
	},
	{
		ID:   "support",
		Name: "Support tickets and messages",
		Fields: []Field{
			{"support_tickets.id", "ticket number"},
			{"support_tickets.account_id", "your account, if you wrote while logged in"},
			{"support_tickets.email", "your email, if you want replies by mail"},
			{"support_tickets.token_hash", "keyed hash of the ticket's reading link"},
			{"support_tickets.subject", "the subject you wrote"},
			{"support_tickets.status", "open, answered or closed"},
			{"support_tickets.created_at", "when you wrote"},
			{"support_tickets.updated_at", "time of the last message"},
			{"support_messages.id", "message number"},
			{"support_messages.ticket_id", "its ticket"},
			{"support_messages.from_operator", "whether the operator wrote it"},
			{"support_messages.body", "the message text"},
			{"support_messages.created_at", "when it was written"},
		},
		Purpose:    "To answer your questions.",
		LegalBasis: basisContract,
		Retention:  RuleSupport,
		Storage:    storageDB,
		SharedWith: []string{"the operator's mail relay, for reply notices when you gave an email"},
		PerAccount: true,
	},
	{
		ID:   "mail",
		Name: "Mail outbox",
		Fields: []Field{
			{"mail_outbox.id", "message number"},
			{"mail_outbox.kind", "transactional (receipts, reminders, policy changes, access-code recovery) or marketing"},
			{"mail_outbox.account_id", "the account it is for, if any"},
			{"mail_outbox.to_addr", "recipient email"},
			{"mail_outbox.subject", "subject"},
			{"mail_outbox.body", "text; a recovery mail holds no access code, and its one-time link is completed only as it is sent"},
			{"mail_outbox.attempts", "failed delivery attempts"},
			{"mail_outbox.next_attempt_at", "when delivery is tried next"},
			{"mail_outbox.created_at", "when it was queued"},
		},
		Purpose:    "To deliver mail reliably when the mail relay is briefly unavailable.",
		LegalBasis: basisContract + " Marketing: " + basisConsent,
		Retention:  RuleOutbox,
		Storage:    storageDB,
		SharedWith: []string{"the operator's mail relay (SMTP), which delivers it"},
		PerAccount: true,
	},
	{
		ID:   "billing",
		Name: "Billing records",
		Fields: []Field{
			{"billing_records.id", "record number"},
			{"billing_records.account_id", "the account paid for; emptied when the account is erased"},
			{"billing_records.processor", "the payment processor"},
			{"billing_records.reference", "the processor's reference of the payment"},
			{"billing_records.product", "what was bought"},
			{"billing_records.days", "the paid time it gave"},
			{"billing_records.amount_cents", "the amount, in cents"},
			{"billing_records.currency", "the currency"},
			{"billing_records.created_at", "when the payment was recorded"},
			{"billing_records.refunded_at", "when it was refunded, if it was"},
		},
		Purpose:    "To account for payments, as tax law requires.",
		LegalBasis: basisLegal,
		Retention:  RuleTax,
		Storage:    storageDB,
		SharedWith: []string{"the payment processor you choose, which handles the payment itself (Veil never sees card numbers)", "tax authorities, when the law requires"},
		PerAccount: true,
		Note: "A record is made when a payment processor reports your payment; it holds no card data, name or address. " +
			"Erasing your account detaches the record from it, and the record is deleted at the end of the tax period.",
	},
	{
		ID:   "pending_refunds",
		Name: "Refunds reported before their payment",
		Fields: []Field{
			{"pending_refunds.processor", "the payment processor"},
			{"pending_refunds.reference", "the processor's reference of the refunded payment"},
			{"pending_refunds.refunded_at", "when the refund was reported"},
		},
		Purpose:    "To apply a refund that the processor reported before the payment itself: the payment then buys no time.",
		LegalBasis: basisLegal,
		Retention:  RuleTax,
		Storage:    storageDB,
		Note:       "Kept until its payment is reported, when it joins the payment's billing record; no account, card data, name or address.",
	},
	{
		ID:   "client_counters",
		Name: "Client version counters",
		Fields: []Field{
			{"client_counters.day", "the day"},
			{"client_counters.os_version", "operating system and version, such as \"linux 6.1\""},
			{"client_counters.app_version", "Veil app version"},
			{"client_counters.count", "how many reports that day"},
		},
		Purpose:    "To support and plan for the systems people use.",
		LegalBasis: basisInterest,
		Retention:  RuleCounters,
		Storage:    storageDB,
		Note:       "Only totals per day are kept, never linked to an account, a device or an address.",
	},
	{
		ID:   "policy_versions",
		Name: "Privacy policy versions",
		Fields: []Field{
			{"policy_versions.id", "version number"},
			{"policy_versions.published_at", "publication date"},
			{"policy_versions.prose", "the operator's text"},
			{"policy_versions.body", "the whole policy as published"},
		},
		Purpose:    "To show every past policy and what changed.",
		LegalBasis: basisInterest,
		Retention:  RuleForever,
		Storage:    storageDB,
		Note:       "Public; holds nothing about any person.",
	},
	{
		ID:   "gateways",
		Name: "Gateways",
		Fields: []Field{
			{"gateways.id", "gateway number"},
			{"gateways.name", "its name"},
			{"gateways.location", "its location"},
			{"gateways.endpoint", "its public address"},
			{"gateways.token_hash", "keyed hash of its token"},
			{"gateways.public_key", "its WireGuard public key"},
			{"gateways.builtin", "whether it runs inside the control plane"},
			{"gateways.peers", "how many devices are connected (a total)"},
			{"gateways.rx_bytes", "bytes received (a total)"},
			{"gateways.tx_bytes", "bytes sent (a total)"},
			{"gateways.last_seen", "its last report"},
			{"gateways.created_at", "when it was added"},
			{"gateways.egress", "the addresses its traffic leaves from"},
			{"gateways.synced_version", "the version of the device list it last said it holds"},
			{"gateways.synced_at", "when it last said so"},
		},
		Purpose:    "To list servers and their load.",
		LegalBasis: basisInterest,
		Retention:  RuleOperator,
		Storage:    storageDB,
		Note:       "The operator's servers; only totals, nothing per device or person.",
	},
	{
		ID:   "peer_map",
		Name: "Gateway synchronisation",
		Fields: []Field{
			{"peer_version.id", "the one row"},
			{"peer_version.version", "current version of the gateways' device list"},
			{"peer_version.history_floor", "oldest version changes are kept from"},
			{"peer_tombstones.public_key", "public key of a device that left the list"},
			{"peer_tombstones.version", "the version it left at"},
			{"peer_tombstones.removed_at", "when it left"},
		},
		Purpose:    "To tell every gateway, within one synchronisation, which devices to drop.",
		LegalBasis: basisContract,
		Retention:  RulePeerHistory,
		Storage:    storageDB,
		Note: "A removed key is no longer linked to any account. Gateways report the version of the list they hold; " +
			"a key is deleted as soon as every gateway has dropped it, and a gateway silent for a day no longer counts.",
	},
	{
		ID:         "schema",
		Name:       "Database version",
		Fields:     []Field{{"schema_version.version", "applied schema migrations"}},
		Purpose:    "To upgrade the database safely.",
		LegalBasis: basisInterest,
		Retention:  RuleForever,
		Storage:    storageDB,
		Note:       "Holds nothing about any person.",
	},
}

// Columns returns the declared schema: table name to column names.
func Columns() map[string][]string {
	out := make(map[string][]string)
	for _, c := range Inventory {
		for _, f := range c.Fields {
			t, col, _ := strings.Cut(f.Column, ".")
			out[t] = append(out[t], col)
		}
	}
	return out
}

// CheckSchema compares a live schema (table to columns, as store.Schema
// returns it) with the inventory, returning one line per difference.
func CheckSchema(live map[string][]string) []string {
	declared := make(map[string]bool)
	for t, cols := range Columns() {
		for _, c := range cols {
			declared[t+"."+c] = true
		}
	}
	var problems []string
	seen := make(map[string]bool)
	for t, cols := range live {
		for _, c := range cols {
			k := t + "." + c
			seen[k] = true
			if !declared[k] {
				problems = append(problems, fmt.Sprintf("%s is stored but not declared in the data inventory", k))
			}
		}
	}
	for _, c := range Inventory {
		for _, f := range c.Fields {
			if !seen[f.Column] {
				problems = append(problems, fmt.Sprintf("%s is declared in the data inventory (%s) but not in the database", f.Column, c.ID))
			}
		}
	}
	return sortStrings(problems)
}
