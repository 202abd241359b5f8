package config

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func writeFile(t testing.TB, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "veil.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "http = \"127.0.0.1:1000\"\nwg_port = 1000\nmax_devices = 3\nsession_ttl = \"2h\"\n")
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	AddFlags(fs, Default())
	if err := fs.Parse([]string{"--wg-port=3000", "--egress-allow=10.9.0.0/24,fd00::/64"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(Sources{
		File:  file,
		Env:   envMap(map[string]string{"VEIL_WG_PORT": "2000", "VEIL_MAX_DEVICES": "4", "VEIL_DATA": "/tmp/x"}),
		Flags: fs,
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP != "127.0.0.1:1000" {
		t.Errorf("http = %q, want the file's value", c.HTTP)
	}
	if c.MaxDevices != 4 {
		t.Errorf("max_devices = %d, want the environment's 4", c.MaxDevices)
	}
	if c.WGPort != 3000 {
		t.Errorf("wg_port = %d, want the flag's 3000", c.WGPort)
	}
	if c.DataDir != "/tmp/x" {
		t.Errorf("data = %q, want the environment's", c.DataDir)
	}
	if time.Duration(c.SessionTTL) != 2*time.Hour {
		t.Errorf("session_ttl = %s, want 2h", c.SessionTTL)
	}
	if len(c.EgressAllow) != 2 || c.EgressAllow[1] != "fd00::/64" {
		t.Errorf("egress_allow = %q", c.EgressAllow)
	}
}

func TestDefaultsValid(t *testing.T) {
	c, err := Load(Sources{})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP != "127.0.0.1:8080" || c.DataDir != "./veil-data" || c.WGPort != 51820 {
		t.Errorf("defaults = %+v", c)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name, file string
		env        map[string]string
		want       string
	}{
		{"unknown key", "htp = \"x\"\n", nil, `unknown key "htp" (line 1)`},
		{"wrong type", "wg_port = \"many\"\n", nil, `wg_port`},
		{"corrupt", "http = \"127.0.0.1:80\nx", nil, "line"},
		{"binary garbage", "\x00\x01\xff\xfe", nil, "config"},
		{"bad port", "wg_port = 70000\n", nil, "wg_port: 70000 is not a UDP port"},
		{"bad pool", "tunnel_ipv4_pool = \"fd00::/64\"\n", nil, "tunnel_ipv4_pool"},
		{"bad location", "location = \"Sweden\"\n", nil, "location"},
		{"bad duration", "session_ttl = \"forever\"\n", nil, "session_ttl"},
		{"bad env", "", map[string]string{"VEIL_MAX_DEVICES": "lots"}, "VEIL_MAX_DEVICES"},
		{"bad db", "db = \"mysql://x\"\n", nil, "db: must be a postgres"},
		{"bad cidr", "egress_allow = [\"10.0.0.0/33\"]\n", nil, "egress_allow"},
		{"plain dns forward", "dns_forward = [\"udp://9.9.9.9\"]\n", nil, "dns_forward"},
		{"bad dns port", "dns_upstream_port = 70000\n", nil, "dns_upstream_port: 70000 is not a port"},
		{"bad whois server", "whois_server = \"whois.iana.org\"\n", nil, "whois_server"},
		{"short billing secret", "billing_secrets = [\"pay=short\"]\n", nil, "billing_secrets"},
		{"billing without a name", "billing_secrets = [\"=0123456789abcdef\"]\n", nil, "billing_secrets"},
		{"repeated processor", "billing_secrets = [\"pay=0123456789abcdef\", \"pay=fedcba9876543210\"]\n", nil, "given twice"},
		{"bad product", "products = [\"premium-30=30\"]\n", nil, "products: \"premium-30=30\": want ID=DAYS:AMOUNT:CURRENCY"},
		{"stripe without products", "stripe_webhook_secret = \"whsec_0123456789abcdef\"\n", nil, "products: Stripe and BTCPay need"},
		{"stripe secret not whsec", "stripe_webhook_secret = \"sk_live_0123456789\"\n", nil, "stripe_webhook_secret"},
		{"half of btcpay", "btcpay_url = \"https://btcpay.example\"\nbtcpay_api_key = \"k\"\n", nil, "all four or none"},
		{"generic stripe", "billing_secrets = [\"stripe=0123456789abcdef\"]\n", nil, "billing_secrets: stripe has keys of its own"},
		{"stripe by env", "", map[string]string{"VEIL_STRIPE_WEBHOOK_SECRET": "nope"}, "stripe_webhook_secret"},
		{"bad checkout url", "checkout_url = \"javascript:alert(1)\"\n", nil, "checkout_url"},
		{"script public url", "public_url = \"javascript:alert(1)\"\n", nil, "public_url: want an http(s) URL"},
		{"public url without host", "public_url = \"https:/x\"\n", nil, "public_url"},
		{"script ipv4 url", "ipv4_url = \"javascript:alert(1)\"\n", nil, "ipv4_url"},
		{"data ipv6 url", "ipv6_url = \"data:text/html,x\"\n", nil, "ipv6_url"},
		{"http stun url", "stun_url = \"https://stun.example\"\n", nil, "stun_url"},
		{"pool of everything v4", "tunnel_ipv4_pool = \"0.0.0.0/0\"\n", nil, "tunnel_ipv4_pool: 0.0.0.0/0 overlaps"},
		{"pool of everything v6", "tunnel_ipv6_pool = \"::/0\"\n", nil, "tunnel_ipv6_pool: ::/0 overlaps"},
		{"loopback pool", "tunnel_ipv4_pool = \"127.0.0.0/8\"\n", nil, "tunnel_ipv4_pool: 127.0.0.0/8 overlaps 127.0.0.0/8 (loopback)"},
		{"pool over loopback", "tunnel_ipv4_pool = \"96.0.0.0/3\"\n", nil, "(loopback)"},
		{"link-local pool", "tunnel_ipv4_pool = \"169.254.0.0/24\"\n", nil, "(link-local)"},
		{"multicast pool", "tunnel_ipv4_pool = \"239.1.0.0/16\"\n", nil, "(multicast)"},
		{"link-local v6 pool", "tunnel_ipv6_pool = \"fe80::/64\"\n", nil, "tunnel_ipv6_pool"},
		{"multicast v6 pool", "tunnel_ipv6_pool = \"ff05::/64\"\n", nil, "tunnel_ipv6_pool"},
		{"nat64 pool", "tunnel_ipv6_pool = \"64:ff9b::/120\"\n", nil, "tunnel_ipv6_pool"},
		{"egress everything v4", "egress_allow = [\"0.0.0.0/0\"]\n", nil, "egress_allow: 0.0.0.0/0 is broader than /8; set allow_broad_ranges"},
		{"egress everything v6", "egress_allow = [\"::/0\"]\n", nil, "egress_allow: ::/0 is broader than /32"},
		{"egress /7", "egress_allow = [\"10.0.0.0/7\"]\n", nil, "egress_allow"},
		{"egress mapped everything", "egress_allow = [\"::ffff:0:0/96\"]\n", nil, "egress_allow"},
		{"egress mapped loopback", "egress_allow = [\"::ffff:127.0.0.0/104\"]\n", nil, "allow the IPv4 range instead"},
		{"egress nat64", "allow_broad_ranges = true\negress_allow = [\"64:ff9b::/96\"]\n", nil, "allow the IPv4 range instead"},
		{"trust everything v4", "trusted_proxies = [\"0.0.0.0/0\"]\n", nil, "trusted_proxies: 0.0.0.0/0 is broader than /8"},
		{"trust everything v6", "trusted_proxies = [\"::/0\"]\n", nil, "trusted_proxies: ::/0 is broader"},
		{"trust mapped everything", "trusted_proxies = [\"::ffff:0:0/96\"]\n", nil, "trusted_proxies"},
		{"policy from a device", "policy_file = \"/dev/zero\"\n", nil, "policy_file: /dev/zero is not a regular file"},
		{"policy from a directory", "policy_file = \"/\"\n", nil, "policy_file: / is not a regular file"},
		{"missing policy", "policy_file = \"/nonexistent/policy.txt\"\n", nil, "policy_file: stat /nonexistent/policy.txt"},
		{"root hints from a device", "dns_root_hints = \"/dev/zero\"\n", nil, "dns_root_hints: /dev/zero is not a regular file"},
		{"blocklist from a device", "dns_blocklists = [\"ads=/dev/zero\"]\n", nil, "dns_blocklists: ads: /dev/zero is not a regular file"},
		{"dns cert without key", "dns_tls_cert = \"/etc/hostname\"\n", nil, "dns_tls_cert, dns_tls_key: both or neither"},
		{"missing dns cert", "dns_tls_cert = \"/nonexistent/c.pem\"\ndns_tls_key = \"/nonexistent/k.pem\"\n", nil, "dns_tls_cert: stat /nonexistent/c.pem"},
		{"public dns without cert", "public_dns = true\n", nil, "public_dns needs public_dns_cert and public_dns_key"},
		{"public dns without listeners", "public_dns = true\npublic_dns_tls_addr = \"\"\npublic_dns_https_addr = \"\"\n", nil, "public_dns: on, but"},
		{"public dns bad addr", "public_dns = true\npublic_dns_tls_addr = \"853\"\n", nil, "public_dns_tls_addr: want HOST:PORT"},
		{"public dns without domain", "public_dns = true\npublic_dns_cert = \"/etc/hostname\"\npublic_dns_key = \"/etc/hostname\"\n", nil, "public_dns_domain"},
		{"public dns rate", "public_dns = true\npublic_dns_cert = \"/etc/hostname\"\npublic_dns_key = \"/etc/hostname\"\npublic_dns_domain = \"dns.example\"\npublic_dns_rate_limit = 0\n", nil, "public_dns_rate_limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := Sources{Env: envMap(tt.env)}
			if tt.file != "" {
				src.File = writeFile(t, tt.file)
			}
			_, err := Load(src)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not contain %q", msg, tt.want)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	_, err := Load(Sources{File: filepath.Join(t.TempDir(), "nope.toml")})
	if err == nil || !strings.Contains(err.Error(), "nope.toml") {
		t.Fatalf("err = %v, want one naming the file", err)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add("http = \"127.0.0.1:8080\"\n")
	f.Add("wg_port = 51820\negress_allow = [\"10.0.0.0/8\"]\n")
	f.Add("[x]\ny=1")
	f.Add("session_ttl = \"1h\"")
	f.Fuzz(func(t *testing.T, body string) {
		p := filepath.Join(t.TempDir(), "f.toml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(Sources{File: p})
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("multi-line error: %q", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Errorf("Load returned an invalid config: %v", err)
		}
	})
}

func TestGatewayConfig(t *testing.T) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	AddFlags(fs, DefaultGateway())
	if err := fs.Parse([]string{"--control=https://veil.example", "--egress-allow=10.9.0.0/24", "--egress-addrs=203.0.113.9,::ffff:198.51.100.8"}); err != nil {
		t.Fatal(err)
	}
	g, err := LoadGateway(Sources{
		File:  writeFile(t, "mode = \"tun\"\ndns_blocklists = [\"ads="+writeFile(t, "ads.example\n")+"\"]\n"),
		Env:   envMap(map[string]string{"VEIL_TOKEN": "tok"}),
		Flags: fs,
	})
	if err != nil {
		t.Fatal(err)
	}
	if g.Control != "https://veil.example" || g.Token != "tok" || g.Mode != "tun" || g.WGPort != 51820 ||
		len(g.EgressPrefixes()) != 1 || len(g.DNSBlocklists) != 1 ||
		fmt.Sprint(g.Egress()) != "[203.0.113.9 198.51.100.8]" {
		t.Errorf("gateway config = %+v (egress %v)", g, g.Egress())
	}
	for _, tt := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"VEIL_TOKEN": "t"}, "config: control"},
		{map[string]string{"VEIL_CONTROL": "ftp://x", "VEIL_TOKEN": "t"}, "config: control"},
		{map[string]string{"VEIL_CONTROL": "http://x"}, "config: token"},
		{map[string]string{"VEIL_CONTROL": "http://x", "VEIL_TOKEN": "t", "VEIL_MODE": "kernel"}, "config: mode"},
		{map[string]string{"VEIL_CONTROL": "http://x", "VEIL_TOKEN": "t", "VEIL_DNS_BLOCKLISTS": "crypto=/x"}, "dns_blocklists"},
		{map[string]string{"VEIL_CONTROL": "http://x", "VEIL_TOKEN": "t", "VEIL_WG_PORT": "99999"}, "wg_port"},
		{map[string]string{"VEIL_CONTROL": "http://x", "VEIL_TOKEN": "t", "VEIL_EGRESS_ADDRS": "gw.example"}, "egress_addrs"},
		{map[string]string{"VEIL_CONTROL": "http://x", "VEIL_TOKEN": "t", "VEIL_IDLE_TIMEOUT": "30s"}, "idle_timeout"},
		{map[string]string{"VEIL_CONTROL": "http://x", "VEIL_TOKEN": "t", "VEIL_ADMIN_HTTP": "9091"}, "admin_http"},
		{map[string]string{"VEIL_CONTROL": "http://x", "VEIL_TOKEN": "t", "VEIL_EGRESS_ALLOW": "::/0"}, "egress_allow: ::/0 is broader"},
		{map[string]string{"VEIL_CONTROL": "http://x", "VEIL_TOKEN": "t", "VEIL_KEY_FILE": "/dev/zero"}, "key_file: /dev/zero is not a regular file"},
		{map[string]string{"VEIL_CONTROL": "http://x", "VEIL_TOKEN": "t", "VEIL_DNS_ROOT_HINTS": "/dev/zero"}, "dns_root_hints"},
		{map[string]string{"VEIL_CONTROL": "javascript:alert(1)", "VEIL_TOKEN": "t"}, "config: control"},
	} {
		if _, err := LoadGateway(Sources{Env: envMap(tt.env)}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("LoadGateway(%v) = %v, want an error with %q", tt.env, err, tt.want)
		}
	}
	if g, err := LoadGateway(Sources{Env: envMap(map[string]string{"VEIL_CONTROL": "http://x", "VEIL_TOKEN": "t",
		"VEIL_DNS_FORWARD": "tls://dns.example:853#dns.example,https://dns.example/dns-query"})}); err != nil || len(g.DNSForward) != 2 {
		t.Errorf("dns_forward for a gateway: %+v, %v", g.DNSForward, err)
	}
	if g := DefaultGateway(); !g.DNSValidate || !Default().DNSValidate {
		t.Error("DNSSEC validation off by default")
	}
	fs = pflag.NewFlagSet("gateway", pflag.ContinueOnError)
	AddFlags(fs, DefaultGateway())
	if err := fs.Parse([]string{"--control=http://x", "--token=t", "--dns-trust-anchor=/etc/veil/anchor.ds", "--dns-validate=false"}); err != nil {
		t.Fatal(err)
	}
	if g, err := LoadGateway(Sources{Flags: fs}); err != nil || g.DNSTrustAnchor != "/etc/veil/anchor.ds" || g.DNSValidate {
		t.Errorf("dns_trust_anchor, dns_validate for a gateway: %q %v, %v", g.DNSTrustAnchor, g.DNSValidate, err)
	}
	if c, err := Load(Sources{File: writeFile(t, "dns_trust_anchor = \"/etc/veil/anchor.ds\"\n")}); err != nil || c.DNSTrustAnchor != "/etc/veil/anchor.ds" || !c.DNSValidate {
		t.Errorf("dns_trust_anchor for serve: %q %v, %v", c.DNSTrustAnchor, c.DNSValidate, err)
	}
	if _, err := LoadGateway(Sources{File: writeFile(t, "http = \"x\"\n")}); err == nil || !strings.Contains(err.Error(), `unknown key "http"`) {
		t.Errorf("a serve-only key in a gateway file: %v", err)
	}
}

// TestBroadRangesWithOverride: the ranges refused as too broad are taken
// when the operator says so.
func TestBroadRangesWithOverride(t *testing.T) {
	c, err := Load(Sources{File: writeFile(t, "allow_broad_ranges = true\negress_allow = [\"0.0.0.0/0\", \"::/0\"]\ntrusted_proxies = [\"0.0.0.0/0\", \"::/0\"]\n")})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.EgressPrefixes()) != 2 || len(c.TrustedProxyPrefixes()) != 2 {
		t.Errorf("egress %v, trusted %v", c.EgressPrefixes(), c.TrustedProxyPrefixes())
	}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	AddFlags(fs, DefaultGateway())
	if err := fs.Parse([]string{"--control=https://veil.example", "--token=t", "--allow-broad-ranges", "--egress-allow=::/0"}); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadGateway(Sources{Flags: fs}); err != nil {
		t.Errorf("gateway with --allow-broad-ranges: %v", err)
	}
	// Narrow ranges and the v6 loopback need no override.
	if _, err := Load(Sources{File: writeFile(t, "egress_allow = [\"10.0.0.0/8\", \"2001:db8::/32\", \"::1/128\"]\npublic_url = \"https://veil.example/\"\nstun_url = \"stun:stun.veil.example:3478\"\n")}); err != nil {
		t.Errorf("narrow ranges: %v", err)
	}
}

// TestOperatorFilesBounded: every file the operator names is read only if
// it is a regular file of bounded size, and the refusal names the key and
// the file at once (a device like /dev/zero would otherwise be read until
// memory runs out).
func TestOperatorFilesBounded(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.txt")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxTextFile + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ file, want string }{
		{"policy_file = \"" + big + "\"\n", "policy_file: " + big + " is larger than 1 MiB"},
		{"dns_root_hints = \"" + big + "\"\n", "dns_root_hints: " + big + " is larger than 1 MiB"},
		{"policy_file = \"" + fifo + "\"\n", "policy_file: " + fifo + " is not a regular file"},
	} {
		_, err := Load(Sources{File: writeFile(t, tt.file)})
		if err == nil || err.Error() != "config: "+tt.want {
			t.Errorf("%s: err = %v, want %q", strings.TrimSpace(tt.file), err, tt.want)
		}
	}
	for _, path := range []string{"/dev/zero", fifo, big} {
		if _, err := Load(Sources{File: path}); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("config file %s: err = %v, want a refusal naming it", path, err)
		}
		if _, err := ReadFile(path, MaxTextFile); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("ReadFile(%s) = %v, want a refusal naming it", path, err)
		}
	}
	// A file whose size says less than it holds is still cut off.
	if _, err := ReadFile("/proc/self/status", 16); err == nil || !strings.Contains(err.Error(), "larger than 16 bytes") {
		t.Errorf("ReadFile of a file larger than its stated size: %v", err)
	}
	small := filepath.Join(dir, "small.txt")
	os.WriteFile(small, []byte("0123456789"), 0o600)
	if b, err := ReadFile(small, MaxTextFile); err != nil || string(b) != "0123456789" {
		t.Errorf("ReadFile(small) = %q, %v", b, err)
	}
}

// TestProcessors: Stripe and BTCPay come on from their keys, by file,
// environment or flag.
func TestProcessors(t *testing.T) {
	file := writeFile(t, "products = [\"premium-30=30:5.00:EUR\"]\nbtcpay_url = \"https://btcpay.example\"\nbtcpay_store_id = \"store1\"\n")
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	AddFlags(fs, Default())
	if err := fs.Parse([]string{"--stripe-webhook-secret", "whsec_0123456789abcdef"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(Sources{File: file, Flags: fs,
		Env: envMap(map[string]string{"VEIL_BTCPAY_API_KEY": "greenfield-key", "VEIL_BTCPAY_WEBHOOK_SECRET": "btcpay-secret-0123456789"})})
	if err != nil {
		t.Fatal(err)
	}
	if c.StripeWebhookSecret != "whsec_0123456789abcdef" || c.BTCPayAPIKey != "greenfield-key" || c.BTCPayStoreID != "store1" || len(c.Products) != 1 {
		t.Fatalf("%+v", c)
	}
}

func TestOpenFileBounded(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "list")
	if err := os.WriteFile(p, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFile(p, 5); err == nil {
		t.Fatal("a file over the limit was opened")
	}
	f, err := OpenFile(p, 10)
	if err != nil {
		t.Fatal(err)
	}
	// The file grows after the check: the reader stops at the limit.
	if err := os.WriteFile(p, []byte("0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	f.Close()
	if err == nil || len(b) > 11 {
		t.Fatalf("read %d bytes of a file grown past its limit, err %v", len(b), err)
	}
	f, err = OpenFile(p, 16)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(f); err != nil || string(b) != "0123456789abcdef" {
		t.Fatalf("file at its limit: %q, %v", b, err)
	}
	f.Close()
	if _, err := OpenFile("/dev/zero", 16); err == nil {
		t.Fatal("a device was opened")
	}
}

func TestPublicDNSDomainName(t *testing.T) {
	for _, tt := range []struct{ domain, url, want string }{
		{"DNS.Example.", "", "dns.example"},
		{"", "https://Veil.Example:8443/x", "veil.example"},
		{"", "https://192.0.2.7/", ""}, // an address names no subdomains
		{"", "", ""},
	} {
		c := Config{PublicDNSDomain: tt.domain, PublicURL: tt.url}
		if got := c.PublicDNSDomainName(); got != tt.want {
			t.Errorf("domain %q, public_url %q: %q, want %q", tt.domain, tt.url, got, tt.want)
		}
	}
}
