package audit

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"veil/internal/client"
	"veil/internal/config"
	"veil/internal/dnstest"
)

// encryptedNames are the names the audit resolves over DNS over TLS and
// HTTPS: through the tunnel to the gateway's tunnel address, and from
// the client's address to serve's public service.
type encryptedNames struct {
	tunnelDoT, tunnelDoH, publicDoT, publicDoH string
}

func newEncryptedNames() encryptedNames {
	return encryptedNames{
		label("auditdottun") + "." + zone, label("auditdohtun") + "." + zone,
		label("auditdotpub") + "." + zone, label("auditdohpub") + "." + zone,
	}
}

func (n encryptedNames) all() []string {
	return []string{n.tunnelDoT, n.tunnelDoH, n.publicDoT, n.publicDoH}
}

// labels returns the names' distinctive first labels, which the audit
// searches for.
func (n encryptedNames) labels() []string {
	var out []string
	for _, name := range n.all() {
		l, _, _ := strings.Cut(name, ".")
		out = append(out, l)
	}
	return out
}

// configureEncrypted gives the built-in gateway a certificate for its
// tunnel address and turns the public service on, on loopback.
func configureEncrypted(t *testing.T, c *config.Config, files dnstest.TLSFiles) {
	t.Helper()
	c.DNSTLSCert, c.DNSTLSKey = files.CertFile, files.KeyFile
	c.PublicDNS = true
	c.PublicDNSTLSAddr, c.PublicDNSHTTPSAddr = "127.0.0.1:0", "127.0.0.1:0"
	c.PublicDNSCert, c.PublicDNSKey = files.CertFile, files.KeyFile
	c.PublicDNSDomain = "dns.test"
}

// encryptedQueries resolves each name over its encrypted path and fails
// unless every one answers want.
func encryptedQueries(t *testing.T, tun *client.Tunnel, files dnstest.TLSFiles, dotAddr, dohAddr net.Addr, n encryptedNames, want netip.Addr) {
	t.Helper()
	tunnelDial := func(ctx context.Context, _, addr string) (net.Conn, error) { return tun.DialContext(ctx, "tcp", addr) }
	src := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: clientAddr.AsSlice()}}
	gw := tun.Status().DNS
	for _, q := range []struct {
		what, name string
		dial       func(context.Context, string, string) (net.Conn, error)
		addr       string
		doh        bool
	}{
		{"DoT through the tunnel", n.tunnelDoT, tunnelDial, net.JoinHostPort(gw, "853"), false},
		{"DoH through the tunnel", n.tunnelDoH, tunnelDial, net.JoinHostPort(gw, "443"), true},
		{"DoT to the public service", n.publicDoT, src.DialContext, dotAddr.String(), false},
		{"DoH to the public service", n.publicDoH, src.DialContext, dohAddr.String(), true},
	} {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(q.name), dns.TypeA)
		var got *dns.Msg
		var err error
		if q.doh {
			got, err = dohQuery(q.dial, q.addr, files, m)
		} else {
			got, err = dotQuery(q.dial, q.addr, files, m)
		}
		if err != nil {
			t.Fatalf("%s: %v", q.what, err)
		}
		if len(got.Answer) != 1 || got.Answer[0].(*dns.A).A.String() != want.String() {
			t.Fatalf("%s: %v, want %v", q.what, got.Answer, want)
		}
	}
}

func dotQuery(dial func(context.Context, string, string) (net.Conn, error), addr string, files dnstest.TLSFiles, m *dns.Msg) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	raw, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := tls.Client(raw, &tls.Config{RootCAs: files.Pool, ServerName: "dns.test"})
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	co := &dns.Conn{Conn: c}
	if err := co.WriteMsg(m); err != nil {
		return nil, err
	}
	return co.ReadMsg()
}

func dohQuery(dial func(context.Context, string, string) (net.Conn, error), addr string, files dnstest.TLSFiles, m *dns.Msg) (*dns.Msg, error) {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: files.Pool, ServerName: "dns.test"},
		ForceAttemptHTTP2: true,
		DialContext:       func(ctx context.Context, network, _ string) (net.Conn, error) { return dial(ctx, network, addr) },
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Timeout: 20 * time.Second, Transport: tr}
	b, err := m.Pack()
	if err != nil {
		return nil, err
	}
	// One GET and one POST: both forms go through the audit.
	resp, err := hc.Get("https://dns.test/dns-query?dns=" + base64.RawURLEncoding.EncodeToString(b))
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	resp, err = hc.Post("https://dns.test/dns-query", "application/dns-message", bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := new(dns.Msg)
	return out, out.Unpack(body)
}
