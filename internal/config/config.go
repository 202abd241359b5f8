// Package config is Veil's typed configuration: defaults, then a TOML
// file, then VEIL_* environment variables, then command-line flags, each
// overriding the one before. It is read once at start-up, validated, and
// passed down; nothing else reads the environment.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/spf13/pflag"

	"veil/internal/apitypes"
	"veil/internal/billing"
)

// Config is everything `veil serve` and `veil gateway` can be told. Every
// field's toml tag is its key in the file; the same key with dashes is its
// flag, and VEIL_ plus the key in upper case its environment variable.
type Config struct {
	// DataDir holds the SQLite database, the server secret and the admin
	// token.
	DataDir string `toml:"data" help:"directory for the database, secrets and tokens"`
	// DB is a PostgreSQL URL; empty means SQLite in DataDir.
	DB string `toml:"db" help:"postgres://… URL; empty: SQLite in the data directory"`
	// HTTP is the public website and API listener.
	HTTP string `toml:"http" help:"public website and API listen address"`
	// AdminHTTP is the operator listener for /metrics; empty disables it.
	AdminHTTP string `toml:"admin_http" help:"operator listener (metrics); empty: off"`
	// PublicURL is how clients reach the API; empty: http://HTTP.
	PublicURL string `toml:"public_url" help:"URL clients use to reach this server"`

	// WGPort is the built-in gateway's WireGuard UDP port.
	WGPort int `toml:"wg_port" help:"built-in gateway WireGuard UDP port"`
	// TLSPort and QUICPort are the built-in gateway's ports for WireGuard
	// over TLS (TCP) and QUIC (UDP), with a self-signed certificate; 0
	// (the default) turns one off.
	TLSPort  int `toml:"tls_port" help:"built-in gateway TCP port for WireGuard over TLS; 0: off"`
	QUICPort int `toml:"quic_port" help:"built-in gateway UDP port for WireGuard over QUIC; 0: off"`
	// ProxyPort is the TCP port of the HTTPS proxy for the browser
	// extension; 0: no proxy.
	ProxyPort int `toml:"proxy_port" help:"TCP port of the built-in gateway's HTTPS proxy for the browser extension; 0: none"`
	// ProxyTLSCert and ProxyTLSKey are the proxy's certificate and key
	// (PEM); empty: a self-signed certificate made at start, whose pin the
	// gateway logs.
	ProxyTLSCert string `toml:"proxy_tls_cert" help:"PEM certificate (chain) of the HTTPS proxy; empty: self-signed, pin logged at start"`
	ProxyTLSKey  string `toml:"proxy_tls_key" help:"PEM private key of the HTTPS proxy's certificate"`
	// Endpoint is the built-in gateway's address as clients dial it;
	// empty: the HTTP host with WGPort.
	Endpoint string `toml:"endpoint" help:"HOST:PORT advertised for the built-in gateway"`
	// BuiltinGateway runs a netstack gateway inside `veil serve`.
	BuiltinGateway bool `toml:"builtin_gateway" help:"run a gateway inside serve"`
	// GatewayName names the built-in gateway in the server list.
	GatewayName string `toml:"gateway_name" help:"built-in gateway name"`
	// Location is the built-in gateway's location, "cc-city".
	Location string `toml:"location" help:"built-in gateway location, cc-city"`
	// EgressAllow lists ranges tunnel traffic and web tools may reach
	// although the egress guard would refuse them.
	EgressAllow []string `toml:"egress_allow" help:"CIDRs the egress guard lets through"`
	// AllowBroadRanges lets egress_allow and trusted_proxies hold ranges
	// broader than /8 (IPv4) or /32 (IPv6).
	AllowBroadRanges bool `toml:"allow_broad_ranges" help:"accept egress_allow and trusted_proxies ranges broader than /8 (IPv4) or /32 (IPv6)"`
	// NoPQ turns off the post-quantum pre-shared key exchange on the
	// built-in gateway's tunnel addresses; clients then keep tunnels without one.
	NoPQ bool `toml:"no_pq" help:"offer no post-quantum (ML-KEM-768) pre-shared key exchange to clients"`
	// DNSRootHints is a named.root file for the resolver; empty: built in.
	DNSRootHints string `toml:"dns_root_hints" help:"root hints file for the DNS resolver"`
	// DNSForward, when set, makes the resolver forward over DNS over TLS
	// ("tls://host:853#name") or HTTPS ("https://host/dns-query") to the
	// operator's upstreams instead of recursing from the root.
	DNSForward []string `toml:"dns_forward" help:"forward DNS to these DoT (tls://host:853#name) or DoH (https://…) upstreams instead of recursing"`
	// DNSBlocklists are the operator's blocklists, "category=FILE" (hosts
	// or domain-list format); devices choose categories to apply.
	DNSBlocklists []string `toml:"dns_blocklists" help:"category=FILE blocklists (ads, trackers, malware, adult, gambling)"`
	// DNSUpstreamPort is the port the resolver asks authoritative servers
	// on; 0 means 53. It is for tests, whose root, TLD and authoritative
	// servers share one unprivileged port on loopback addresses.
	DNSUpstreamPort int `toml:"dns_upstream_port" help:"port of authoritative DNS servers (tests); 0: 53"`
	// DNSTrustAnchor is a file of DS or DNSKEY records (presentation
	// format) the resolver validates DNSSEC from; empty: the built-in
	// IANA root anchor.
	DNSTrustAnchor string `toml:"dns_trust_anchor" help:"DNSSEC trust anchor file (DS or DNSKEY records); empty: the built-in IANA root KSKs"`
	// DNSValidate turns DNSSEC validation on (the default); off only for
	// test roots that are not signed.
	DNSValidate bool `toml:"dns_validate" help:"validate DNSSEC (turn off only for an unsigned test root)"`
	// DNSTLSCert and DNSTLSKey are the PEM certificate and key of DNS
	// over TLS (port 853) and HTTPS (port 443, /dns-query) on the
	// built-in gateway's tunnel addresses; empty: plain DNS only.
	DNSTLSCert string `toml:"dns_tls_cert" help:"PEM certificate for DNS over TLS/HTTPS on the tunnel addresses; empty: off"`
	DNSTLSKey  string `toml:"dns_tls_key" help:"PEM key of dns_tls_cert"`

	// PublicDNS runs a public DNS over TLS and HTTPS service on this
	// host, for anyone, with blocking categories chosen by host name or
	// path.
	PublicDNS bool `toml:"public_dns" help:"run a public DNS over TLS and HTTPS service"`
	// PublicDNSTLSAddr is the public DNS over TLS listener; empty: off.
	PublicDNSTLSAddr string `toml:"public_dns_tls_addr" help:"public DNS over TLS listen address; empty: off"`
	// PublicDNSHTTPSAddr is the public DNS over HTTPS listener
	// (https://HOST/dns-query); empty: off.
	PublicDNSHTTPSAddr string `toml:"public_dns_https_addr" help:"public DNS over HTTPS listen address; empty: off"`
	// PublicDNSCert and PublicDNSKey are the public service's PEM
	// certificate and key, for PublicDNSDomain and its subdomains.
	PublicDNSCert string `toml:"public_dns_cert" help:"PEM certificate of the public DNS service (its domain and *.domain)"`
	PublicDNSKey  string `toml:"public_dns_key" help:"PEM key of public_dns_cert"`
	// PublicDNSDomain is the public service's host name; its subdomains
	// name blocking categories (ads-malware.DOMAIN). Empty: the host of
	// public_url.
	PublicDNSDomain string `toml:"public_dns_domain" help:"host name of the public DNS service; ads.HOST blocks ads; empty: public_url's host"`
	// PublicDNSRateLimit is the answers per second one client of the
	// public service gets (burst of twice as many).
	PublicDNSRateLimit int `toml:"public_dns_rate_limit" help:"answers per second per client of the public DNS service"`

	// TunnelIPv4Pool and TunnelIPv6Pool are the device address pools. The
	// first host of each is the gateways' own tunnel address.
	TunnelIPv4Pool string `toml:"tunnel_ipv4_pool" help:"device IPv4 address pool"`
	TunnelIPv6Pool string `toml:"tunnel_ipv6_pool" help:"device IPv6 address pool"`
	// MaxDevices is the device limit per account.
	MaxDevices int `toml:"max_devices" help:"devices per account"`
	// FreePlanOn offers the free plan to accounts without paid or trial
	// time; the free_* keys are its limits (FreePlan).
	FreePlanOn bool `toml:"free_plan" help:"offer a free plan to accounts without paid or trial time"`
	// FreeLocations are the locations (se-sto) or countries (se) whose
	// gateways serve free devices; empty: all.
	FreeLocations []string `toml:"free_locations" help:"locations (cc-city) or countries (cc) the free plan includes; empty: all"`
	// FreeDevices is how many devices a free account keeps connected.
	FreeDevices int `toml:"free_devices" help:"devices per free account"`
	// FreeBandwidth caps each free device in each direction, "10Mbit".
	FreeBandwidth string `toml:"free_bandwidth" help:"bandwidth cap per free device, each direction (10Mbit, 512kbit)"`
	// TrialDays is the length of a new account's trial; 0: no trial.
	TrialDays int `toml:"trial_days" help:"trial length of new accounts in days"`
	// SessionTTL is the lifetime of a bearer token.
	SessionTTL Duration `toml:"session_ttl" help:"lifetime of API session tokens"`

	// DNSLeakZone is the zone the DNS leak test's authoritative server
	// answers; its NS records at the parent must point to DNSLeakAddr.
	// Empty: the leak test is off.
	DNSLeakZone string `toml:"dnsleak_zone" help:"zone of the DNS leak test server; empty: off"`
	// DNSLeakAddr is the leak test server's UDP and TCP listen address.
	DNSLeakAddr string `toml:"dnsleak_addr" help:"DNS leak test server listen address"`
	// DNSLeakNSAddrs are the public addresses of the leak zone's name
	// servers.
	DNSLeakNSAddrs []string `toml:"dnsleak_ns_addrs" help:"addresses of the leak zone's name servers"`
	// DNSBL lists blocklist zones the My IP page checks the visitor's
	// address against.
	DNSBL []string `toml:"dnsbl" help:"DNS blocklist zones for the My IP check"`
	// TrustedProxies are reverse proxies whose X-Forwarded-For is believed.
	TrustedProxies []string `toml:"trusted_proxies" help:"CIDRs of reverse proxies in front of serve"`
	// IPv4URL and IPv6URL are this site on IPv4-only and IPv6-only host
	// names, for the My IP page's dual-stack check.
	IPv4URL string `toml:"ipv4_url" help:"this site on an IPv4-only host name"`
	IPv6URL string `toml:"ipv6_url" help:"this site on an IPv6-only host name"`
	// STUNURL is the STUN server for the page's WebRTC check; empty: only
	// host candidates.
	STUNURL string `toml:"stun_url" help:"STUN server for the WebRTC check"`
	// BillingSecrets are the payment processors whose signed
	// notifications POST /api/v1/billing/NAME takes, "NAME=SECRET".
	BillingSecrets []string `toml:"billing_secrets" help:"payment processors' webhook signing secrets, NAME=SECRET"`
	// CheckoutURL is where customers pay: a processor's payment page, with
	// {ref} replaced by the account's payment reference (for example
	// "https://pay.example/veil?client_reference_id={ref}"); empty: the
	// account page shows the reference alone.
	CheckoutURL string `toml:"checkout_url" help:"payment page; {ref} is replaced by the account's payment reference"`
	// Products are what customers can buy, "ID=DAYS:PRICES:PLAN:NAME"
	// ("premium-30=30:5.00 EUR/6.00 USD:premium:Premium, 30 days"; the
	// older "ID=DAYS:AMOUNT:CURRENCY" is read too); the pricing page
	// lists them, and Stripe's and BTCPay's payments name a product and
	// take its days from here. A flag or variable splits entries at
	// commas: names with commas go in the file.
	Products []string `toml:"products" help:"products on sale, ID=DAYS:PRICE[/PRICE…]:PLAN:NAME (premium-30=30:5.00 EUR/6.00 USD:premium:Premium 30 days)"`
	// StripeLinks are the products' Stripe Payment Links,
	// "PRODUCT=plink_ID:URL"; the account page offers each with the
	// account's payment reference as client_reference_id.
	StripeLinks []string `toml:"stripe_links" help:"Stripe Payment Links, PRODUCT=plink_ID:https://buy.stripe.com/…"`
	// StripeWebhookSecret is the Stripe webhook endpoint's signing secret;
	// empty: POST /api/v1/billing/stripe is off.
	StripeWebhookSecret string `toml:"stripe_webhook_secret" help:"Stripe webhook signing secret (whsec_…); empty: Stripe off"`
	// BTCPayURL, BTCPayAPIKey and BTCPayStoreID reach a BTCPay Server
	// store's Greenfield API; BTCPayWebhookSecret signs its webhooks. All
	// four or none: BTCPay off.
	BTCPayURL           string `toml:"btcpay_url" help:"BTCPay Server URL; empty: BTCPay off"`
	BTCPayAPIKey        string `toml:"btcpay_api_key" help:"BTCPay Greenfield API key (invoice permissions)"`
	BTCPayStoreID       string `toml:"btcpay_store_id" help:"BTCPay store id"`
	BTCPayWebhookSecret string `toml:"btcpay_webhook_secret" help:"BTCPay store webhook secret"`
	// SignupPowBits is the sign-up proof of work's difficulty: leading
	// zero bits of SHA-256 (each bit doubles the work).
	SignupPowBits int `toml:"signup_pow_bits" help:"sign-up proof-of-work difficulty in bits"`
	// SignupPerHour is how many accounts one visitor may create per hour
	// (counted in memory by a keyed hash of the address).
	SignupPerHour int `toml:"signup_per_hour" help:"sign-ups per visitor per hour"`
	// ExpiryReminderDays is how many days before paid time ends the
	// reminder mail goes; 0: no reminder.
	ExpiryReminderDays int `toml:"expiry_reminder_days" help:"days before paid time ends to mail a reminder; 0: none"`
	// AffiliateSharePercent is the share of a referred account's payments
	// credited to its affiliate.
	AffiliateSharePercent int `toml:"affiliate_share_percent" help:"percent of referred payments credited to the affiliate"`
	// WhoisServer is the whois tool's first server, HOST:PORT; the
	// servers it refers to are asked on the same port.
	WhoisServer string `toml:"whois_server" help:"first server of the whois tool, HOST:PORT"`

	// SMTPHost is the mail relay; empty: mail waits in the outbox and is
	// deleted undelivered after the outbox retention.
	SMTPHost string `toml:"smtp_host" help:"SMTP relay host; empty: no mail is sent"`
	// SMTPPort is the relay's port.
	SMTPPort int `toml:"smtp_port" help:"SMTP relay port"`
	// SMTPUser and SMTPPassword authenticate to the relay; empty: none.
	SMTPUser     string `toml:"smtp_user" help:"SMTP user; empty: no authentication"`
	SMTPPassword string `toml:"smtp_password" help:"SMTP password"`
	// SMTPTLS is mandatory, opportunistic (STARTTLS when offered) or none.
	SMTPTLS string `toml:"smtp_tls" help:"mandatory, opportunistic or none"`
	// MailFrom is the sender address of Veil's mail.
	MailFrom string `toml:"mail_from" help:"sender address of Veil's mail"`
	// OperatorName, OperatorAddress and OperatorEmail say who runs the
	// service: the contacts page shows them and names the operator as
	// the controller of the data.
	OperatorName    string `toml:"operator_name" help:"who runs the service (contacts page, controller in the policy)"`
	OperatorAddress string `toml:"operator_address" help:"the operator's postal address; \\n separates lines"`
	OperatorEmail   string `toml:"operator_email" help:"the operator's contact address"`
	// ProseDir holds the operator's own Markdown pages (terms.LANG.md,
	// refund.LANG.md, help/SLUG.LANG.md, blog/DATE-SLUG.LANG.md), which
	// replace the built-in pages of the same name and language.
	ProseDir string `toml:"prose_dir" help:"directory of the operator's Markdown pages (terms, refund, help, blog)"`
	// PolicyFile holds the operator's privacy-policy text, shown with the
	// data inventory until a version is published; empty: a built-in text.
	// A path with {lang} names one file per language (policy.{lang}.txt:
	// policy.en.txt, policy.de.txt, …): the English one is required and
	// is the text published; the others are its translations, and a
	// language without one shows the English text, saying so.
	PolicyFile string `toml:"policy_file" help:"operator's privacy policy text; {lang} in the path: one file per language (en required)"`
	// RetentionEvery is how often the retention sweeper runs.
	RetentionEvery Duration `toml:"retention_every" help:"retention sweep interval"`
	// UnusedAccountDays is how long an account without paid or trial time
	// and without a login is kept.
	UnusedAccountDays int `toml:"unused_account_days" help:"days an unused, unpaid account is kept"`
	// TaxYears is how long billing records are kept.
	TaxYears int `toml:"tax_years" help:"years billing records are kept"`
	// BackupDays is how long the operator keeps backups of the database;
	// the privacy policy states it. 0: none are kept.
	BackupDays int `toml:"backup_days" help:"days database backups are kept, as the privacy policy states; 0: none"`

	// LogLevel is debug, info, warn or error.
	LogLevel string `toml:"log_level" help:"debug, info, warn or error"`
}

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		DataDir:               "./veil-data",
		HTTP:                  "127.0.0.1:8080",
		AdminHTTP:             "127.0.0.1:9090",
		WGPort:                51820,
		BuiltinGateway:        true,
		DNSValidate:           true,
		PublicDNSTLSAddr:      ":853",
		PublicDNSHTTPSAddr:    ":443",
		PublicDNSRateLimit:    50,
		GatewayName:           "local",
		Location:              "xx-local",
		TunnelIPv4Pool:        "10.64.0.0/10",
		TunnelIPv6Pool:        "fd7a:7665:696c::/64",
		MaxDevices:            5,
		FreeDevices:           1,
		FreeBandwidth:         "10Mbit",
		TrialDays:             7,
		SignupPowBits:         18,
		SignupPerHour:         10,
		ExpiryReminderDays:    3,
		AffiliateSharePercent: 20,
		SessionTTL:            Duration(24 * time.Hour),
		DNSLeakAddr:           "127.0.0.1:5353",
		WhoisServer:           "whois.iana.org:43",
		SMTPPort:              587,
		SMTPTLS:               "opportunistic",
		MailFrom:              "veil@localhost",
		RetentionEvery:        Duration(time.Hour),
		UnusedAccountDays:     90,
		TaxYears:              7,
		BackupDays:            30,
		LogLevel:              "info",
	}
}

// Duration is a time.Duration written as "24h" in files and flags.
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// String returns the duration as "24h0m0s".
func (d Duration) String() string { return time.Duration(d).String() }

// Set implements pflag.Value.
func (d *Duration) Set(s string) error { return d.UnmarshalText([]byte(s)) }

// Type implements pflag.Value.
func (d *Duration) Type() string { return "duration" }

// Sources says where to read from. A nil field means that source is not
// used.
type Sources struct {
	// File is a TOML file; empty: none.
	File string
	// Env looks a variable up, as os.LookupEnv does.
	Env func(string) (string, bool)
	// Flags holds the command's flags, registered by AddFlags; only flags
	// the user set override.
	Flags *pflag.FlagSet
}

// AddFlags registers one flag per key of a configuration struct on fs,
// named like the key with dashes (data, db, http, wg-port, …), with the
// values in def (a Config or a Gateway) as defaults.
func AddFlags(fs *pflag.FlagSet, def any) {
	v := reflect.New(reflect.TypeOf(def)).Elem()
	v.Set(reflect.ValueOf(def))
	forEachField(v, func(key string, f reflect.Value, help string) {
		name := flagName(key)
		switch p := f.Addr().Interface().(type) {
		case *string:
			fs.String(name, *p, help)
		case *int:
			fs.Int(name, *p, help)
		case *bool:
			fs.Bool(name, *p, help)
		case *[]string:
			fs.StringSlice(name, *p, help)
		case *Duration:
			d := *p // the default, which the help shows
			fs.Var(&d, name, help)
		}
	})
}

// Load reads the configuration of `veil serve` from its sources and
// validates it. Errors are one line and name the offending key.
func Load(src Sources) (Config, error) {
	c := Default()
	if err := load(&c, src); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// load overrides the struct dst points to with the file, the environment
// and the flags, in that order.
func load(dst any, src Sources) error {
	if src.File != "" {
		b, err := ReadFile(src.File, MaxTextFile)
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		dec := toml.NewDecoder(bytes.NewReader(b)).DisallowUnknownFields()
		if err := dec.Decode(dst); err != nil {
			return fileError(src.File, err)
		}
	}
	v := reflect.ValueOf(dst).Elem()
	var errs []error
	if src.Env != nil {
		forEachField(v, func(key string, f reflect.Value, _ string) {
			name := "VEIL_" + strings.ToUpper(key)
			if s, ok := src.Env(name); ok {
				if err := setText(f, s); err != nil {
					errs = append(errs, fmt.Errorf("config: environment %s: %w", name, err))
				}
			}
		})
	}
	if src.Flags != nil {
		forEachField(v, func(key string, f reflect.Value, _ string) {
			fl := src.Flags.Lookup(flagName(key))
			if fl == nil || !fl.Changed {
				return
			}
			var err error
			if sv, ok := fl.Value.(pflag.SliceValue); ok {
				f.Set(reflect.ValueOf(sv.GetSlice()))
			} else {
				err = setText(f, fl.Value.String())
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("config: flag --%s: %w", fl.Name, err))
			}
		})
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// Validate checks every key and returns the first problem, naming the key.
func (c *Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...))
	}
	if c.DataDir == "" {
		return bad("data", "must not be empty")
	}
	if c.DB != "" && !strings.HasPrefix(c.DB, "postgres://") && !strings.HasPrefix(c.DB, "postgresql://") {
		return bad("db", "must be a postgres:// URL, or empty for SQLite")
	}
	if _, _, err := net.SplitHostPort(c.HTTP); err != nil {
		return bad("http", "want HOST:PORT, got %q", c.HTTP)
	}
	if _, err := c.BillingSecretMap(); err != nil {
		return bad("billing_secrets", "%v", err)
	}
	if err := c.checkProcessors(); err != nil {
		return err
	}
	if c.CheckoutURL != "" && !httpURL(strings.ReplaceAll(c.CheckoutURL, "{ref}", "1-a")) {
		return bad("checkout_url", "want an http(s) URL, got %q", c.CheckoutURL)
	}
	for _, u := range []struct{ key, val string }{{"public_url", c.PublicURL}, {"ipv4_url", c.IPv4URL}, {"ipv6_url", c.IPv6URL}} {
		if u.val != "" && !httpURL(u.val) {
			return bad(u.key, "want an http(s) URL, got %q", u.val)
		}
	}
	if c.STUNURL != "" && !stunURL(c.STUNURL) {
		return bad("stun_url", "want stun:HOST[:PORT] or stuns:HOST[:PORT], got %q", c.STUNURL)
	}
	if c.PolicyFile != "" {
		if err := CheckFile(strings.ReplaceAll(c.PolicyFile, "{lang}", "en"), MaxTextFile); err != nil {
			return bad("policy_file", "%v", err)
		}
	}
	if _, _, err := c.WhoisAddr(); err != nil {
		return bad("whois_server", "want HOST:PORT, got %q", c.WhoisServer)
	}
	if c.AdminHTTP != "" {
		if _, _, err := net.SplitHostPort(c.AdminHTTP); err != nil {
			return bad("admin_http", "want HOST:PORT, got %q", c.AdminHTTP)
		}
	}
	if err := checkProxy(c.ProxyPort, c.ProxyTLSCert, c.ProxyTLSKey); err != nil {
		return err
	}
	if err := (dataPlane{c.WGPort, c.DNSUpstreamPort, c.EgressAllow, c.AllowBroadRanges, c.DNSRootHints, c.DNSBlocklists, c.DNSForward, c.LogLevel}).check(); err != nil {
		return err
	}
	if err := checkTransportPorts(c.WGPort, c.TLSPort, c.QUICPort); err != nil {
		return err
	}
	if err := checkCertPair("dns_tls_cert", c.DNSTLSCert, "dns_tls_key", c.DNSTLSKey); err != nil {
		return err
	}
	if err := c.checkPublicDNS(); err != nil {
		return err
	}
	if err := c.checkTCPPorts(); err != nil {
		return err
	}
	if c.Endpoint != "" {
		if _, _, err := net.SplitHostPort(c.Endpoint); err != nil {
			return bad("endpoint", "want HOST:PORT, got %q", c.Endpoint)
		}
	}
	if !ValidLocation(c.Location) {
		return bad("location", "want cc-city (two-letter country, a dash, a city code), got %q", c.Location)
	}
	for _, s := range c.TrustedProxies {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return bad("trusted_proxies", "%q is not a CIDR", s)
		}
		if err := checkBroad(p, c.AllowBroadRanges); err != nil {
			return bad("trusted_proxies", "%v", err)
		}
	}
	if c.DNSLeakZone != "" {
		if _, _, err := net.SplitHostPort(c.DNSLeakAddr); err != nil {
			return bad("dnsleak_addr", "want HOST:PORT, got %q", c.DNSLeakAddr)
		}
	}
	for _, s := range c.DNSLeakNSAddrs {
		if _, err := netip.ParseAddr(s); err != nil {
			return bad("dnsleak_ns_addrs", "%q is not an IP address", s)
		}
	}
	p4, err := netip.ParsePrefix(c.TunnelIPv4Pool)
	if err != nil || !p4.Addr().Is4() || p4.Bits() > 30 {
		return bad("tunnel_ipv4_pool", "want an IPv4 CIDR of /30 or larger, got %q", c.TunnelIPv4Pool)
	}
	if err := checkPool(p4); err != nil {
		return bad("tunnel_ipv4_pool", "%v", err)
	}
	p6, err := netip.ParsePrefix(c.TunnelIPv6Pool)
	if err != nil || !p6.Addr().Is6() || p6.Addr().Is4In6() || p6.Bits() > 126 {
		return bad("tunnel_ipv6_pool", "want an IPv6 CIDR of /126 or larger, got %q", c.TunnelIPv6Pool)
	}
	if err := checkPool(p6); err != nil {
		return bad("tunnel_ipv6_pool", "%v", err)
	}
	if c.MaxDevices < 1 || c.MaxDevices > 1000 {
		return bad("max_devices", "want 1 to 1000, got %d", c.MaxDevices)
	}
	if _, err := c.FreePlan(); err != nil {
		return err
	}
	if c.SignupPowBits < 0 || c.SignupPowBits > 32 {
		return bad("signup_pow_bits", "want 0 to 32, got %d", c.SignupPowBits)
	}
	if c.SignupPerHour < 1 || c.SignupPerHour > 100000 {
		return bad("signup_per_hour", "want 1 to 100000, got %d", c.SignupPerHour)
	}
	if c.ExpiryReminderDays < 0 || c.ExpiryReminderDays > 60 {
		return bad("expiry_reminder_days", "want 0 to 60, got %d", c.ExpiryReminderDays)
	}
	if c.AffiliateSharePercent < 0 || c.AffiliateSharePercent > 90 {
		return bad("affiliate_share_percent", "want 0 to 90, got %d", c.AffiliateSharePercent)
	}
	if c.TrialDays < 0 || c.TrialDays > 3650 {
		return bad("trial_days", "want 0 to 3650, got %d", c.TrialDays)
	}
	if d := time.Duration(c.SessionTTL); d < time.Minute || d > 90*24*time.Hour {
		return bad("session_ttl", "want between 1m and 2160h, got %s", d)
	}
	if c.SMTPPort < 1 || c.SMTPPort > 65535 {
		return bad("smtp_port", "%d is not a TCP port", c.SMTPPort)
	}
	switch c.SMTPTLS {
	case "mandatory", "opportunistic", "none":
	default:
		return bad("smtp_tls", "want mandatory, opportunistic or none, got %q", c.SMTPTLS)
	}
	if a, err := mail.ParseAddress(c.MailFrom); err != nil || a.Name != "" || !strings.Contains(c.MailFrom, "@") {
		return bad("mail_from", "want a plain address like veil@example.org, got %q", c.MailFrom)
	}
	if d := time.Duration(c.RetentionEvery); d < time.Minute || d > 7*24*time.Hour {
		return bad("retention_every", "want between 1m and 168h, got %s", d)
	}
	if c.UnusedAccountDays < 1 || c.UnusedAccountDays > 3650 {
		return bad("unused_account_days", "want 1 to 3650, got %d", c.UnusedAccountDays)
	}
	if c.TaxYears < 0 || c.TaxYears > 30 {
		return bad("tax_years", "want 0 to 30, got %d", c.TaxYears)
	}
	if c.BackupDays < 0 || c.BackupDays > 3650 {
		return bad("backup_days", "want 0 to 3650, got %d", c.BackupDays)
	}
	return nil
}

// checkPublicDNS validates the public DNS service's keys.
// checkTCPPorts refuses two TCP listeners on one port: the built-in
// gateway's TLS transport and HTTPS proxy listen on every address, so
// they clash with any of the serve's own listeners on the same port
// (tls_port 443 beside a DNS over HTTPS service on :443, say), which
// would otherwise stop the start with "address already in use".
func (c *Config) checkTCPPorts() error {
	type listener struct {
		key  string
		port int
	}
	var ls []listener
	for _, a := range []struct {
		key, addr string
		on        bool
	}{
		{"http", c.HTTP, true},
		{"admin_http", c.AdminHTTP, true},
		{"public_dns_tls_addr", c.PublicDNSTLSAddr, c.PublicDNS},
		{"public_dns_https_addr", c.PublicDNSHTTPSAddr, c.PublicDNS},
	} {
		if !a.on || a.addr == "" {
			continue
		}
		_, p, err := net.SplitHostPort(a.addr)
		if err != nil {
			continue // reported by the check of that key
		}
		if n, err := strconv.Atoi(p); err == nil && n != 0 {
			ls = append(ls, listener{a.key, n})
		}
	}
	for _, g := range []listener{{"tls_port", c.TLSPort}, {"proxy_port", c.ProxyPort}} {
		if g.port == 0 {
			continue
		}
		for _, l := range ls {
			if l.port == g.port {
				return fmt.Errorf("config: %s: TCP port %d is %s's too; give one of them another port", g.key, g.port, l.key)
			}
		}
		ls = append(ls, g)
	}
	return nil
}

func (c *Config) checkPublicDNS() error {
	if !c.PublicDNS {
		return nil
	}
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...))
	}
	if c.PublicDNSTLSAddr == "" && c.PublicDNSHTTPSAddr == "" {
		return bad("public_dns", "on, but public_dns_tls_addr and public_dns_https_addr are both empty")
	}
	for _, a := range []struct{ key, val string }{{"public_dns_tls_addr", c.PublicDNSTLSAddr}, {"public_dns_https_addr", c.PublicDNSHTTPSAddr}} {
		if a.val == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.val); err != nil {
			return bad(a.key, "want HOST:PORT, got %q", a.val)
		}
	}
	if c.PublicDNSCert == "" || c.PublicDNSKey == "" {
		return bad("public_dns_cert", "public_dns needs public_dns_cert and public_dns_key")
	}
	if err := checkCertPair("public_dns_cert", c.PublicDNSCert, "public_dns_key", c.PublicDNSKey); err != nil {
		return err
	}
	if d := c.PublicDNSDomainName(); d == "" || strings.ContainsAny(d, "/:") {
		return bad("public_dns_domain", "want a host name such as dns.example (or set public_url), got %q", c.PublicDNSDomain)
	}
	if c.PublicDNSRateLimit < 1 || c.PublicDNSRateLimit > 100000 {
		return bad("public_dns_rate_limit", "want 1 to 100000, got %d", c.PublicDNSRateLimit)
	}
	return nil
}

// PublicDNSDomainName returns PublicDNSDomain, or the host of PublicURL.
func (c *Config) PublicDNSDomainName() string {
	if c.PublicDNSDomain != "" {
		return strings.TrimSuffix(strings.ToLower(c.PublicDNSDomain), ".")
	}
	if u, err := url.Parse(c.PublicURL); err == nil && c.PublicURL != "" {
		if _, err := netip.ParseAddr(u.Hostname()); err != nil {
			return strings.ToLower(u.Hostname())
		}
	}
	return ""
}

// checkCertPair checks a certificate and key file setting: both or
// neither, and readable.
func checkCertPair(certKey, cert, keyKey, key string) error {
	if (cert == "") != (key == "") {
		return fmt.Errorf("config: %s, %s: both or neither", certKey, keyKey)
	}
	for _, f := range []struct{ key, val string }{{certKey, cert}, {keyKey, key}} {
		if f.val == "" {
			continue
		}
		if err := CheckFile(f.val, MaxTextFile); err != nil {
			return fmt.Errorf("config: %s: %v", f.key, err)
		}
	}
	return nil
}

// dataPlane holds the keys serve's built-in gateway and veil gateway
// share.
type dataPlane struct {
	wgPort, dnsPort     int
	egress              []string
	allowBroad          bool
	rootHints           string
	blocklists, forward []string
	logLevel            string
}

// check validates the data-plane keys.
func (d dataPlane) check() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...))
	}
	if d.wgPort < 0 || d.wgPort > 65535 {
		return bad("wg_port", "%d is not a UDP port", d.wgPort)
	}
	if d.dnsPort < 0 || d.dnsPort > 65535 {
		return bad("dns_upstream_port", "%d is not a port", d.dnsPort)
	}
	for _, s := range d.egress {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return bad("egress_allow", "%q is not a CIDR", s)
		}
		if err := checkEgress(p, d.allowBroad); err != nil {
			return bad("egress_allow", "%v", err)
		}
	}
	if d.rootHints != "" {
		if err := CheckFile(d.rootHints, MaxTextFile); err != nil {
			return bad("dns_root_hints", "%v", err)
		}
	}
	lists, err := ParseBlocklists(d.blocklists)
	if err != nil {
		return bad("dns_blocklists", "%v", err)
	}
	for _, cat := range apitypes.BlockCategories {
		if file, ok := lists[cat]; ok {
			if err := CheckFile(file, MaxBlocklistFile); err != nil {
				return bad("dns_blocklists", "%s: %v", cat, err)
			}
		}
	}
	for _, f := range d.forward {
		u, err := url.Parse(f)
		if err != nil || (u.Scheme != "tls" && u.Scheme != "https") || u.Host == "" {
			return bad("dns_forward", "%q: want tls://host:853#servername or https://host/dns-query", f)
		}
	}
	switch d.logLevel {
	case "debug", "info", "warn", "error":
	default:
		return bad("log_level", "want debug, info, warn or error, got %q", d.logLevel)
	}
	return nil
}

var processorName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// BillingSecretMap returns BillingSecrets by processor name.
func (c *Config) BillingSecretMap() (map[string]string, error) {
	out := map[string]string{}
	for _, e := range c.BillingSecrets {
		name, secret, ok := strings.Cut(e, "=")
		if !ok || !processorName.MatchString(name) || len(secret) < 16 {
			return nil, errors.New("want NAME=SECRET: a lower-case name, a secret of 16 characters or more")
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("processor %s given twice", name)
		}
		out[name] = secret
	}
	return out, nil
}

// checkProcessors validates the products and the Stripe and BTCPay keys.
func (c *Config) checkProcessors() error {
	products, err := billing.ParseProducts(c.Products)
	if err != nil {
		return fmt.Errorf("config: products: %v", err)
	}
	if _, err := billing.ParseStripeLinks(c.StripeLinks, products); err != nil {
		return fmt.Errorf("config: stripe_links: %v", err)
	}
	secrets, _ := c.BillingSecretMap()
	for _, name := range []string{"stripe", "btcpay", billing.VoucherProcessor} {
		if _, ok := secrets[name]; ok {
			return fmt.Errorf("config: billing_secrets: %s has keys of its own (%s_…)", name, name)
		}
	}
	btcpay := []string{c.BTCPayURL, c.BTCPayAPIKey, c.BTCPayStoreID, c.BTCPayWebhookSecret}
	if slices.Contains(btcpay, "") && slices.ContainsFunc(btcpay, func(v string) bool { return v != "" }) {
		return errors.New("config: btcpay_url, btcpay_api_key, btcpay_store_id, btcpay_webhook_secret: all four or none")
	}
	switch {
	case c.BTCPayURL != "" && !httpURL(c.BTCPayURL):
		return fmt.Errorf("config: btcpay_url: want an http(s) URL, got %q", c.BTCPayURL)
	case c.BTCPayWebhookSecret != "" && len(c.BTCPayWebhookSecret) < 16:
		return errors.New("config: btcpay_webhook_secret: 16 characters or more")
	case c.StripeWebhookSecret != "" && !strings.HasPrefix(c.StripeWebhookSecret, "whsec_"):
		return errors.New("config: stripe_webhook_secret: want the endpoint's signing secret, whsec_…")
	case (c.StripeWebhookSecret != "" || c.BTCPayURL != "") && len(products) == 0:
		return errors.New("config: products: Stripe and BTCPay need at least one product")
	}
	return nil
}

// WhoisAddr splits WhoisServer into its host and port.
func (c *Config) WhoisAddr() (host string, port int, err error) {
	host, ps, err := net.SplitHostPort(c.WhoisServer)
	if err != nil {
		return "", 0, err
	}
	port, err = strconv.Atoi(ps)
	if err != nil || port < 1 || port > 65535 || host == "" {
		return "", 0, errors.New("bad whois server")
	}
	return host, port, nil
}

// EgressPrefixes returns EgressAllow parsed; Validate has checked it.
func (c *Config) EgressPrefixes() []netip.Prefix { return prefixes(c.EgressAllow) }

// TrustedProxyPrefixes returns TrustedProxies parsed.
func (c *Config) TrustedProxyPrefixes() []netip.Prefix { return prefixes(c.TrustedProxies) }

func prefixes(ss []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// ParseBlocklists reads "category=FILE" entries into a map, checking the
// categories against apitypes.BlockCategories.
func ParseBlocklists(entries []string) (map[string]string, error) {
	out := make(map[string]string, len(entries))
	for _, e := range entries {
		cat, file, ok := strings.Cut(e, "=")
		if !ok || file == "" {
			return nil, fmt.Errorf("%q: want category=FILE", e)
		}
		if !slices.Contains(apitypes.BlockCategories, cat) {
			return nil, fmt.Errorf("%q: unknown category; choose from %s", cat, strings.Join(apitypes.BlockCategories, ", "))
		}
		out[cat] = file
	}
	return out, nil
}

// ValidLocation reports whether s looks like "cc-city": two lower-case
// letters, a dash, and one or more lower-case letters or digits.
func ValidLocation(s string) bool {
	cc, city, ok := strings.Cut(s, "-")
	if !ok || len(cc) != 2 || city == "" || len(city) > 32 {
		return false
	}
	for _, r := range cc {
		if r < 'a' || r > 'z' {
			return false
		}
	}
	for _, r := range city {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}

func fileError(file string, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) && len(strict.Errors) > 0 {
		e := strict.Errors[0]
		row, _ := e.Position()
		return fmt.Errorf("config %s: unknown key %q (line %d)", file, strings.Join(e.Key(), "."), row)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		key := strings.Join(de.Key(), ".")
		if key != "" {
			return fmt.Errorf("config %s: key %q (line %d): %s", file, key, row, oneLine(de.Error()))
		}
		return fmt.Errorf("config %s: line %d: %s", file, row, oneLine(de.Error()))
	}
	return fmt.Errorf("config %s: %s", file, oneLine(err.Error()))
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(s)
}

func forEachField(v reflect.Value, fn func(key string, f reflect.Value, help string)) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		key, _, _ := strings.Cut(sf.Tag.Get("toml"), ",")
		if key == "" || key == "-" {
			continue
		}
		fn(key, v.Field(i), sf.Tag.Get("help"))
	}
}

func flagName(key string) string { return strings.ReplaceAll(key, "_", "-") }

// setText sets a field from its text form, as environment variables and
// flags give it.
func setText(f reflect.Value, s string) error {
	switch p := f.Addr().Interface().(type) {
	case *string:
		*p = s
	case *int:
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not a number", s)
		}
		*p = n
	case *bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		*p = b
	case *[]string:
		*p = nil
		for _, part := range strings.Split(s, ",") {
			if part = strings.TrimSpace(part); part != "" {
				*p = append(*p, part)
			}
		}
	case *Duration:
		if err := p.UnmarshalText([]byte(s)); err != nil {
			return fmt.Errorf("%q is not a duration like 24h", s)
		}
	default:
		return fmt.Errorf("unsupported type %s", f.Type())
	}
	return nil
}

// checkProxy validates the HTTPS proxy's keys.
func checkProxy(port int, cert, key string) error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...))
	}
	if port < 0 || port > 65535 {
		return bad("proxy_port", "%d is not a TCP port", port)
	}
	if (cert == "") != (key == "") {
		return bad("proxy_tls_cert", "set proxy_tls_cert and proxy_tls_key together")
	}
	for k, f := range map[string]string{"proxy_tls_cert": cert, "proxy_tls_key": key} {
		if f != "" {
			if err := CheckFile(f, MaxTextFile); err != nil {
				return bad(k, "%v", err)
			}
		}
	}
	return nil
}

// PublicBase is the site's address as people reach it, without a
// trailing slash: public_url, or http:// and the listen address.
func (c *Config) PublicBase() string {
	if base := strings.TrimSuffix(c.PublicURL, "/"); base != "" {
		return base
	}
	return "http://" + c.HTTP
}
