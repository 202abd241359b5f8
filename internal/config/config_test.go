package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
		{"bad checkout url", "checkout_url = \"javascript:alert(1)\"\n", nil, "checkout_url"},
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
		File:  writeFile(t, "mode = \"tun\"\ndns_blocklists = [\"ads=/x\"]\n"),
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
