package config

import (
	"strings"
	"testing"
)

func TestTransportPorts(t *testing.T) {
	tests := []struct {
		wg, tls, quic int
		ok            bool
	}{
		{51820, 443, 443, true},
		{51820, 0, 0, true},
		{51820, 443, 51820, false},
		{51820, -1, 443, false},
		{51820, 443, 70000, false},
	}
	for _, tt := range tests {
		if err := checkTransportPorts(tt.wg, tt.tls, tt.quic); (err == nil) != tt.ok {
			t.Errorf("checkTransportPorts(%d, %d, %d) = %v, want ok=%v", tt.wg, tt.tls, tt.quic, err, tt.ok)
		}
	}
	g := DefaultGateway()
	g.Control, g.Token = "https://veil.example", "t"
	if err := g.Validate(); err != nil || g.TLSPort != 443 || g.QUICPort != 443 {
		t.Fatalf("default gateway: %v, TLS %d, QUIC %d", err, g.TLSPort, g.QUICPort)
	}
	g.TLSCert = "/nonexistent.pem"
	if err := g.Validate(); err == nil {
		t.Fatal("tls_cert without tls_key accepted")
	}
}

// TestTCPPortClash: the built-in gateway's TCP transports listen on every
// address, so a serve listener on the same port is refused at load, by
// name, instead of failing the start with "address already in use".
func TestTCPPortClash(t *testing.T) {
	base := Default()
	if err := base.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	tests := []struct {
		name   string
		change func(*Config)
		clash  string // the key the error names; empty: accepted
	}{
		{"tls beside http", func(c *Config) { c.HTTP, c.TLSPort = "127.0.0.1:8443", 8443 }, "tls_port"},
		{"proxy beside admin", func(c *Config) { c.AdminHTTP, c.ProxyPort = "127.0.0.1:9100", 9100 }, "proxy_port"},
		{"tls beside proxy", func(c *Config) { c.TLSPort, c.ProxyPort = 8443, 8443 }, "proxy_port"},
		{"distinct ports", func(c *Config) { c.HTTP, c.TLSPort, c.ProxyPort = "127.0.0.1:8080", 443, 8443 }, ""},
		{"tls beside DoH", func(c *Config) {
			c.PublicDNS, c.PublicDNSCert, c.PublicDNSKey, c.PublicDNSDomain = true, "/etc/hostname", "/etc/hostname", "dns.example"
			c.PublicDNSHTTPSAddr, c.TLSPort = ":443", 443
		}, "tls_port"},
		{"DoH off, its address unused", func(c *Config) { c.PublicDNSHTTPSAddr, c.TLSPort = ":443", 443 }, ""},
	}
	for _, tt := range tests {
		c := base
		tt.change(&c)
		err := c.Validate()
		switch {
		case tt.clash == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.clash != "" && (err == nil || !strings.Contains(err.Error(), tt.clash+":")):
			t.Errorf("%s: %v, want an error naming %s", tt.name, err, tt.clash)
		}
	}
}
