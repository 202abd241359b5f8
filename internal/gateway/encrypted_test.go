package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"

	"veil/internal/dnstest"
	"veil/internal/resolver"
)

// TestNetstackEncryptedDNS: a netstack gateway with a certificate
// answers its peer over DNS over TLS on port 853 and DNS over HTTPS on
// port 443 of both tunnel addresses, in process, with a real resolver
// recursing from a test root on loopback.
func TestNetstackEncryptedDNS(t *testing.T) {
	root := dnstest.MustZone(". 86400 IN SOA a.root.test. admin.test. 1 3600 600 86400 300\nwww.dot.test. 300 IN A 192.0.2.88", ".")
	h := dnstest.Start(t, dnstest.Host{Addr: netip.MustParseAddr("127.0.0.2"), Handler: root})
	res, err := resolver.New(resolver.Config{
		RootHints: h.Hints, Port: h.Port, DisableDNSSEC: true,
		Egress: func(netip.Addr) error { return nil },
		Allow:  func(netip.Addr) bool { return true },
	})
	if err != nil {
		t.Fatal(err)
	}
	files := dnstest.NewTLSFiles(t, "10.64.0.1", "fd7a:7665:696c::1")
	cert, err := DNSCertFiles(files.CertFile, files.KeyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := res.Encrypted(resolver.EncryptedConfig{GetCertificate: cert})
	if err != nil {
		t.Fatal(err)
	}
	control := newFakeControl(t)
	g, _ := startGateway(t, control, loopback, res, func(c *Config) { c.EncryptedDNS = enc })
	c := newClient(t, g)
	v := control.set(c.peer)
	waitFor(t, "peer applied", func() bool { return g.Stats().PeerMapVersion >= v })

	q := new(dns.Msg)
	q.SetQuestion("www.dot.test.", dns.TypeA)
	check := func(t *testing.T, m *dns.Msg, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.0.2.88" {
			t.Fatalf("answer %v", m.Answer)
		}
	}
	for _, host := range []string{"10.64.0.1", "fd7a:7665:696c::1"} {
		t.Run("DoT "+host, func(t *testing.T) {
			nc, err := c.net.DialContext(testCtx(t), "tcp", net.JoinHostPort(host, "853"))
			if err != nil {
				t.Fatal(err)
			}
			tc := tls.Client(nc, &tls.Config{RootCAs: files.Pool, ServerName: host})
			defer tc.Close()
			tc.SetDeadline(time.Now().Add(20 * time.Second))
			co := &dns.Conn{Conn: tc}
			if err := co.WriteMsg(q); err != nil {
				t.Fatal(err)
			}
			m, err := co.ReadMsg()
			check(t, m, err)
		})
		t.Run("DoH "+host, func(t *testing.T) {
			tr := &http.Transport{
				TLSClientConfig:   &tls.Config{RootCAs: files.Pool},
				ForceAttemptHTTP2: true,
				DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
					return c.net.DialContext(ctx, network, addr)
				},
			}
			defer tr.CloseIdleConnections()
			b, _ := q.Pack()
			hc := &http.Client{Timeout: 20 * time.Second, Transport: tr}
			resp, err := hc.Post("https://"+net.JoinHostPort(host, "443")+resolver.DoHPath, "application/dns-message", bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
				t.Fatalf("%s %s: %s", resp.Proto, resp.Status, body)
			}
			m := new(dns.Msg)
			check(t, m, m.Unpack(body))
		})
	}
}

// TestCertificateFileErrors checks the exact text of a certificate that
// cannot be read: the gateway says what the certificate is for, certfile
// which files and why, each once.
func TestCertificateFileErrors(t *testing.T) {
	files := dnstest.NewTLSFiles(t, "10.64.0.1")
	corrupt := filepath.Join(t.TempDir(), "corrupt.pem")
	if err := os.WriteFile(corrupt, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		load func() error
		want string
	}{
		{"DNS, missing", func() error { _, err := DNSCertFiles("/nonexistent/cert.pem", files.KeyFile, nil); return err },
			"reading DNS certificate: stat /nonexistent/cert.pem: no such file or directory"},
		{"DNS, corrupt", func() error { _, err := DNSCertFiles(corrupt, files.KeyFile, nil); return err },
			"reading DNS certificate: " + corrupt + " and " + files.KeyFile + ": tls: failed to find any PEM data in certificate input"},
		{"proxy, corrupt", func() error { _, err := LoadProxyConfig(8443, files.CertFile, corrupt); return err },
			"reading the proxy certificate: " + files.CertFile + " and " + corrupt + ": tls: failed to find any PEM data in key input"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.load()
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tt.want {
				t.Errorf("error %q, want %q", err, tt.want)
			}
		})
	}
}
