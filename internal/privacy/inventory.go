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

// Field is one stored column, "table.column". What it holds is the
// message privacy.field.TABLE.COLUMN of the catalogues
// (internal/i18n/catalog/privacy.LANG.toml).
type Field struct {
	Column string
}

// Meaning is the message id of what f holds.
func (f Field) Meaning() string { return "privacy.field." + f.Column }

// Category is one kind of stored data. Its texts are message ids of the
// catalogues (internal/i18n/catalog/privacy.LANG.toml), so that the
// policy speaks every language of the site: Name, Purpose and Note are
// privacy.ID.name, .purpose and .note, SharedWith privacy.ID.shared1,
// .shared2 and so on; LegalBasis and Storage are often shared (basis…,
// storage… below). TestInventoryTranslated fails when one is missing.
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

// The legal bases and storage places several categories share, as
// message ids.
const (
	basisContract  = "privacy.basis.contract"
	basisLegal     = "privacy.basis.legal"
	basisInterest  = "privacy.basis.interest"
	basisAccount   = "privacy.basis.account" // contract, and consent for the email and marketing
	basisMail      = "privacy.basis.mail"    // contract, and consent for marketing
	storageDB      = "privacy.storage.db"
	storageDBGates = "privacy.storage.db_gateways"
)

// Inventory is every category of data Veil stores. Nothing else is
// stored: the schema test compares this list with the live database.
var Inventory = []Category{
	{
		ID:   "account",
		Name: "privacy.account.name",
		Fields: []Field{
			{"accounts.id"},
			{"accounts.code_hash"},
			{"accounts.email"},
			{"accounts.plan"},
			{"accounts.paid_until"},
			{"accounts.trial_until"},
			{"accounts.marketing_consent"},
			{"accounts.restricted"},
			{"accounts.legal_hold"},
			{"accounts.last_used"},
			{"accounts.created_at"},
			{"accounts.reminded_until"},
			// lang is one of the site's seven language codes, never the
			// browser's Accept-Language header itself: it tells no more
			// than which of the site's languages the account reads.
			{"accounts.lang"},
		},
		Purpose:    "privacy.account.purpose",
		LegalBasis: basisAccount,
		Retention:  RuleUnusedAccount,
		Storage:    storageDB,
		PerAccount: true,
	},
	{
		ID:   "devices",
		Name: "privacy.devices.name",
		Fields: []Field{
			{"devices.id"},
			{"devices.account_id"},
			{"devices.name"},
			{"devices.public_key"},
			{"devices.addr_index"},
			{"devices.block"},
			{"devices.in_map"},
			{"devices.free"},
			{"devices.peer_version"},
			{"devices.created_at"},
			{"devices.key_created_at"},
			{"devices.proxy_hash"},
		},
		Purpose:    "privacy.devices.purpose",
		LegalBasis: basisContract,
		Retention:  RuleWithAccount,
		Storage:    storageDBGates,
		SharedWith: []string{"privacy.devices.shared1"},
		PerAccount: true,
	},
	{
		ID:   "sessions",
		Name: "privacy.sessions.name",
		Fields: []Field{
			{"sessions.token_hash"},
			{"sessions.account_id"},
			{"sessions.expires_at"},
		},
		Purpose:    "privacy.sessions.purpose",
		LegalBasis: basisContract,
		Retention:  RuleSessionExpiry,
		Storage:    storageDB,
		PerAccount: true,
	},
	{
		ID:   "recovery",
		Name: "privacy.recovery.name",
		Fields: []Field{
			{"recovery_tokens.token_hash"},
			{"recovery_tokens.account_id"},
			{"recovery_tokens.expires_at"},
		},
		Purpose:    "privacy.recovery.purpose",
		LegalBasis: basisContract,
		Retention:  RuleLinkExpiry,
		Storage:    storageDB,
		PerAccount: true,
	},
	{
		ID:   "support",
		Name: "privacy.support.name",
		Fields: []Field{
			{"support_tickets.id"},
			{"support_tickets.account_id"},
			{"support_tickets.email"},
			{"support_tickets.token_hash"},
			{"support_tickets.subject"},
			{"support_tickets.status"},
			{"support_tickets.created_at"},
			{"support_tickets.updated_at"},
			{"support_tickets.lang"},
			{"support_messages.id"},
			{"support_messages.ticket_id"},
			{"support_messages.from_operator"},
			{"support_messages.body"},
			{"support_messages.created_at"},
		},
		Purpose:    "privacy.support.purpose",
		LegalBasis: basisContract,
		Retention:  RuleSupport,
		Storage:    storageDB,
		SharedWith: []string{"privacy.support.shared1"},
		PerAccount: true,
	},
	{
		ID:   "mail",
		Name: "privacy.mail.name",
		Fields: []Field{
			{"mail_outbox.id"},
			{"mail_outbox.kind"},
			{"mail_outbox.account_id"},
			{"mail_outbox.to_addr"},
			{"mail_outbox.subject"},
			{"mail_outbox.body"},
			{"mail_outbox.attempts"},
			{"mail_outbox.next_attempt_at"},
			{"mail_outbox.created_at"},
		},
		Purpose:    "privacy.mail.purpose",
		LegalBasis: basisMail,
		Retention:  RuleOutbox,
		Storage:    storageDB,
		SharedWith: []string{"privacy.mail.shared1"},
		PerAccount: true,
	},
	{
		ID:   "billing",
		Name: "privacy.billing.name",
		Fields: []Field{
			{"billing_records.id"},
			{"billing_records.account_id"},
			{"billing_records.processor"},
			{"billing_records.reference"},
			{"billing_records.product"},
			{"billing_records.days"},
			{"billing_records.amount_cents"},
			{"billing_records.currency"},
			{"billing_records.created_at"},
			{"billing_records.refunded_at"},
		},
		Purpose:    "privacy.billing.purpose",
		LegalBasis: basisLegal,
		Retention:  RuleTax,
		Storage:    storageDB,
		SharedWith: []string{"privacy.billing.shared1", "privacy.billing.shared2"},
		PerAccount: true,
		Note:       "privacy.billing.note",
	},
	{
		ID:   "pending_refunds",
		Name: "privacy.pending_refunds.name",
		Fields: []Field{
			{"pending_refunds.processor"},
			{"pending_refunds.reference"},
			{"pending_refunds.refunded_at"},
		},
		Purpose:    "privacy.pending_refunds.purpose",
		LegalBasis: basisLegal,
		Retention:  RuleTax,
		Storage:    storageDB,
		Note:       "privacy.pending_refunds.note",
	},
	{
		ID:   "vouchers",
		Name: "privacy.vouchers.name",
		Fields: []Field{
			{"vouchers.id"},
			{"vouchers.code_hash"},
			{"vouchers.days"},
			{"vouchers.created_at"},
			{"vouchers.redeemed_at"},
		},
		Purpose:    "privacy.vouchers.purpose",
		LegalBasis: basisContract,
		Retention:  RuleOperator,
		Storage:    storageDB,
		Note:       "privacy.vouchers.note",
	},
	{
		ID:   "affiliates",
		Name: "privacy.affiliates.name",
		Fields: []Field{
			{"affiliates.account_id"},
			{"affiliates.code"},
			{"affiliates.created_at"},
			{"affiliate_ledger.id"},
			{"affiliate_ledger.affiliate_id"},
			{"affiliate_ledger.billing_record_id"},
			{"affiliate_ledger.kind"},
			{"affiliate_ledger.amount_cents"},
			{"affiliate_ledger.currency"},
			{"affiliate_ledger.created_at"},
		},
		Purpose:    "privacy.affiliates.purpose",
		LegalBasis: basisContract,
		Retention:  RuleWithAccount,
		Storage:    storageDB,
		PerAccount: true,
		Note:       "privacy.affiliates.note",
	},
	{
		ID:   "referrals",
		Name: "privacy.referrals.name",
		Fields: []Field{
			{"referrals.id"},
			{"referrals.account_id"},
			{"referrals.affiliate_id"},
			{"referrals.created_at"},
		},
		Purpose:    "privacy.referrals.purpose",
		LegalBasis: basisContract,
		Retention:  RuleWithAccount,
		Storage:    storageDB,
		PerAccount: true,
		Note:       "privacy.referrals.note",
	},
	{
		ID:   "client_counters",
		Name: "privacy.client_counters.name",
		Fields: []Field{
			{"client_counters.day"},
			{"client_counters.os_version"},
			{"client_counters.app_version"},
			{"client_counters.count"},
		},
		Purpose:    "privacy.client_counters.purpose",
		LegalBasis: basisInterest,
		Retention:  RuleCounters,
		Storage:    storageDB,
		Note:       "privacy.client_counters.note",
	},
	{
		ID:   "policy_versions",
		Name: "privacy.policy_versions.name",
		Fields: []Field{
			{"policy_versions.id"},
			{"policy_versions.published_at"},
			{"policy_versions.prose"},
			{"policy_versions.body"},
		},
		Purpose:    "privacy.policy_versions.purpose",
		LegalBasis: basisInterest,
		Retention:  RuleForever,
		Storage:    storageDB,
		Note:       "privacy.policy_versions.note",
	},
	{
		ID:   "gateways",
		Name: "privacy.gateways.name",
		Fields: []Field{
			{"gateways.id"},
			{"gateways.name"},
			{"gateways.location"},
			{"gateways.endpoint"},
			{"gateways.token_hash"},
			{"gateways.public_key"},
			{"gateways.builtin"},
			{"gateways.peers"},
			{"gateways.rx_bytes"},
			{"gateways.tx_bytes"},
			{"gateways.last_seen"},
			{"gateways.created_at"},
			{"gateways.egress"},
			{"gateways.tls_port"},
			{"gateways.quic_port"},
			{"gateways.cert_pin"},
			{"gateways.proxy_port"},
			{"gateways.synced_version"},
			{"gateways.synced_at"},
		},
		Purpose:    "privacy.gateways.purpose",
		LegalBasis: basisInterest,
		Retention:  RuleOperator,
		Storage:    storageDB,
		Note:       "privacy.gateways.note",
	},
	{
		ID:   "peer_map",
		Name: "privacy.peer_map.name",
		Fields: []Field{
			{"peer_version.id"},
			{"peer_version.version"},
			{"peer_version.history_floor"},
			{"peer_tombstones.public_key"},
			{"peer_tombstones.version"},
			{"peer_tombstones.removed_at"},
		},
		Purpose:    "privacy.peer_map.purpose",
		LegalBasis: basisContract,
		Retention:  RulePeerHistory,
		Storage:    storageDB,
		Note:       "privacy.peer_map.note",
	},
	{
		ID:         "schema",
		Name:       "privacy.schema.name",
		Fields:     []Field{{"schema_version.version"}},
		Purpose:    "privacy.schema.purpose",
		LegalBasis: basisInterest,
		Retention:  RuleForever,
		Storage:    storageDB,
		Note:       "privacy.schema.note",
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
