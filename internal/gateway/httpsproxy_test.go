package gateway

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"veil/internal/apitypes"
	"veil/internal/wg"
)

// startProxyGateway runs a gateway with its HTTPS proxy and one extension
// device whose credential is secret; loopback is allowed so the test's
// servers are reachable.
func startProxyGateway(t *testing.T, secret string) (*Gateway, *fakeControl, apitypes.Peer, fmt.Stringer) {
	t.Helper()
	control := newFakeControl(t)
	g, logs := startGateway(t, control, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, nil, func(c *Config) {
		c.Proxy = &ProxyConfig{MaxConns: 2}
	})
	k, err := wg.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte(secret))
	peer := apitypes.Peer{PublicKey: k.Public().Base64(), AllowedIPs: []string{}, Plan: "paid", ProxyHash: hex.EncodeToString(h[:])}
	v := control.set(peer)
	waitFor(t, "credential applied", func() bool { return g.Stats().PeerMapVersion >= v })
	return g, control, peer, logs
}

// echoServer answers every request with the address it came from.
func echoServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "from "+r.RemoteAddr)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// proxyConn opens TLS to the gateway's proxy, checking the certificate
// by its pin as a browser told the pin would.
func proxyConn(t *testing.T, g *Gateway) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(g.ProxyPort())), &tls.Config{
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			spki := sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
			if base64.StdEncoding.EncodeToString(spki[:]) != g.ProxyPin() {
				return fmt.Errorf("certificate does not match the pin")
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// connect sends CONNECT target with the credential (none if empty) and
// returns the answer and the connection's reader.
func connect(t *testing.T, g *Gateway, target, secret string) (*http.Response, net.Conn, *bufio.Reader) {
	t.Helper()
	c := proxyConn(t, g)
	req := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n"
	if secret != "" {
		req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("veil:"+secret)) + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp, c, br
}

func TestHTTPSProxy(t *testing.T) {
	const secret = "a-credential-of-high-entropy-for-the-test"
	g, control, peer, logs := startProxyGateway(t, secret)
	echo := echoServer(t)
	target := strings.TrimPrefix(echo.URL, "http://")

	t.Run("no entry in WireGuard", func(t *testing.T) {
		if n := g.Stats().Authorized; n != 0 {
			t.Errorf("an extension device became a WireGuard peer: %d authorised", n)
		}
	})

	for _, tc := range []struct{ name, secret string }{{"no credential", ""}, {"wrong credential", "guess"}} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _, _ := connect(t, g, target, tc.secret)
			if resp.StatusCode != http.StatusProxyAuthRequired {
				t.Fatalf("status %d, want 407", resp.StatusCode)
			}
			if !strings.HasPrefix(resp.Header.Get("Proxy-Authenticate"), "Basic") {
				t.Errorf("Proxy-Authenticate %q, want Basic", resp.Header.Get("Proxy-Authenticate"))
			}
		})
	}

	t.Run("CONNECT", func(t *testing.T) {
		resp, c, br := connect(t, g, target, secret)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		r, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(r.Body)
		if !strings.HasPrefix(string(body), "from 127.0.0.1:") {
			t.Errorf("echo answered %q", body)
		}
	})

	t.Run("plain http", func(t *testing.T) {
		pu := &url.URL{Scheme: "https", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(g.ProxyPort())), User: url.UserPassword("veil", secret)}
		hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu), TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		resp, err := hc.Get(echo.URL + "/page")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "from 127.0.0.1:") {
			t.Errorf("status %d, body %q", resp.StatusCode, body)
		}
	})

	t.Run("egress guard", func(t *testing.T) {
		for _, dst := range []string{"169.254.169.254:80", "10.1.2.3:443", "[::1]:22", "192.168.0.1:80"} {
			resp, _, _ := connect(t, g, dst, secret)
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
			if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "not reachable") {
				t.Errorf("CONNECT %s: status %d, %q; want 502 refused", dst, resp.StatusCode, body)
			}
		}
	})

	t.Run("bounded per credential", func(t *testing.T) {
		var open []net.Conn
		for range 2 {
			resp, c, _ := connect(t, g, target, secret)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			open = append(open, c)
		}
		resp, _, _ := connect(t, g, target, secret)
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("third connection: status %d, want 429", resp.StatusCode)
		}
		for _, c := range open {
			c.Close()
		}
	})

	t.Run("revoked at the next sync", func(t *testing.T) {
		var resp *http.Response
		var c net.Conn
		var br *bufio.Reader
		// The connections closed above may still count for a moment.
		waitFor(t, "a free slot", func() bool {
			resp, c, br = connect(t, g, target, secret)
			return resp.StatusCode == http.StatusOK
		})
		v := control.remove(peer.PublicKey)
		waitFor(t, "removal applied", func() bool { return g.Stats().PeerMapVersion >= v })
		// The open tunnel is closed: reading ends. The deadline only
		// ends a failing test.
		c.SetReadDeadline(time.Now().Add(time.Minute))
		if _, err := io.ReadAll(br); err != nil && !isClosed(err) {
			t.Errorf("reading the revoked tunnel: %v", err)
		}
		c.Close()
		resp, _, _ = connect(t, g, target, secret)
		if resp.StatusCode != http.StatusProxyAuthRequired {
			t.Errorf("after removal: status %d, want 407", resp.StatusCode)
		}
	})

	t.Run("nothing logged", func(t *testing.T) {
		out := logs.String()
		for _, s := range []string{target, "169.254", "10.1.2.3", "192.168", secret, peer.ProxyHash} {
			if strings.Contains(out, s) {
				t.Errorf("log holds %q:\n%s", s, out)
			}
		}
	})
}

func isClosed(err error) bool {
	return strings.Contains(err.Error(), "closed") || strings.Contains(err.Error(), "reset")
}

func TestPeerStateProxy(t *testing.T) {
	s := newPeerState()
	k1, k2 := wg.Key{1}, wg.Key{2}
	h := func(b byte) string { x := sha256.Sum256([]byte{b}); return hex.EncodeToString(x[:]) }
	sum := func(b byte) [sha256.Size]byte { return sha256.Sum256([]byte{b}) }
	full := func(ps ...apitypes.Peer) change {
		return s.diff(apitypes.PeerMap{Full: true, Peers: ps}, nil)
	}
	ch := full(apitypes.Peer{PublicKey: k1.Base64(), ProxyHash: h(1)}, apitypes.Peer{PublicKey: k2.Base64(), ProxyHash: "nothex"})
	s.record(ch)
	if !s.proxyAllowed(sum(1)) || ch.invalid != 1 || len(ch.set) != 0 {
		t.Fatalf("after first map: allowed %v, invalid %d, set %d", s.proxyAllowed(sum(1)), ch.invalid, len(ch.set))
	}
	// A delta changes the credential: the old hash no longer opens.
	s.record(s.diff(apitypes.PeerMap{Peers: []apitypes.Peer{{PublicKey: k1.Base64(), ProxyHash: h(3)}}}, nil))
	if s.proxyAllowed(sum(1)) || !s.proxyAllowed(sum(3)) {
		t.Error("a changed credential: the old still opens or the new does not")
	}
	// A full map without it drops it.
	s.record(full())
	if s.proxyAllowed(sum(3)) || len(s.proxy) != 0 || len(s.proxyKey) != 0 {
		t.Error("a full map without the device left its credential")
	}
	// A delta removal drops it too.
	s.record(full(apitypes.Peer{PublicKey: k2.Base64(), ProxyHash: h(2)}))
	s.record(s.diff(apitypes.PeerMap{Removed: []string{k2.Base64()}}, nil))
	if s.proxyAllowed(sum(2)) {
		t.Error("a removed device's credential still opens")
	}
}
