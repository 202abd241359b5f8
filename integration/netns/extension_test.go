//go:build linux

package netns

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	_ "modernc.org/sqlite"
)

// TestBrowserExtension loads the unpacked extension into Chromium on the
// client host, logs in with an access code, connects through the
// built-in gateway's HTTPS proxy, and loads a page from the internet
// host, which must see the gateway's address. Then the account expires:
// at the next peer-map sync the proxy refuses the credential (407) and
// the popup says the account has expired.
func TestBrowserExtension(t *testing.T) {
	requireNetns(t)
	chromium := os.Getenv("VEIL_TEST_CHROMIUM")
	if chromium == "" {
		t.Skip("VEIL_TEST_CHROMIUM is not set: browser tests skipped (apt-get install chromium; scripts/test.sh sets it)")
	}
	tp := newTopo(t)
	certFile, keyFile, pin := proxyCertificate(t, tp.tmp)
	tp.serveArgs = append(tp.serveArgs, "--proxy-port", "8443", "--proxy-tls-cert", certFile, "--proxy-tls-key", keyFile)
	gw := tp.startGateway(t, builtinGateway)
	if srv := tp.onlineServer(t, gw.location); srv == nil || srv.Proxy != gwIn4+":8443" {
		t.Fatalf("the server list does not offer the proxy: %+v", srv)
	}
	code := tp.veil(t, tp.g, "admin", "account", "create", "--days", "30", "--control", control, "--data", gw.data)

	ctx := extensionBrowser(t, tp, chromium, pin)
	id := extensionID(t, ctx)
	popup := "chrome-extension://" + id + "/popup.html"
	if err := chromedp.Do(ctx,
		chromedp.Navigate(popup),
		chromedp.WaitVisible("#login-form"),
		chromedp.SetValue("#control", control),
		chromedp.SendKeys("#code", code),
		chromedp.Click("#login"),
		chromedp.WaitVisible("#main"),
	); err != nil {
		t.Fatalf("logging in: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.SetValue("#location", gw.location), chromedp.Click("#toggle"),
		chromedp.WaitVisible("#state.on")); err != nil {
		t.Fatalf("connecting: %v", err)
	}
	state, _ := chromedp.Run(ctx, chromedp.Text("#state"))
	if !strings.HasPrefix(state, "On") {
		t.Errorf("state after connecting: %q", state)
	}
	webrtc, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`chrome.privacy.network.webRTCIPHandlingPolicy.get({}).then(d => d.value)`, chromedp.EvalAwaitPromise))
	if err != nil || webrtc != "disable_non_proxied_udp" {
		t.Errorf("WebRTC policy %q (%v), want disable_non_proxied_udp", webrtc, err)
	}

	// A page on the internet host, through the proxy: it sees the gateway.
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+inet4+"/")); err != nil {
		t.Fatalf("loading the page: %v", err)
	}
	seen, err := chromedp.Run(ctx, chromedp.Text("body"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(seen) != gwOut4 {
		t.Fatalf("the internet host saw %q, want the gateway's %s", seen, gwOut4)
	}

	// The credential the extension holds works at the proxy from Go too.
	if err := chromedp.Do(ctx, chromedp.Navigate(popup), chromedp.WaitVisible("#main")); err != nil {
		t.Fatal(err)
	}
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`chrome.storage.local.get("veil").then(s => JSON.stringify(s.veil.credential))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	var cred struct{ User, Password string }
	if err := json.Unmarshal([]byte(raw), &cred); err != nil || cred.Password == "" {
		t.Fatalf("credential in storage %q: %v", raw, err)
	}
	if status, body := proxyGet(t, tp, cred.User, cred.Password); status != http.StatusOK || body != gwOut4 {
		t.Fatalf("Go request through the proxy: %d %q", status, body)
	}

	// The account expires; the control plane's activity sync takes its
	// devices out of the peer map, and the gateway's next sync drops the
	// credential.
	expireAccounts(t, filepath.Join(gw.data, "veil.db"))
	var status int
	for range 300 {
		if status, _ = proxyGet(t, tp, cred.User, cred.Password); status == http.StatusProxyAuthRequired {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if status != http.StatusProxyAuthRequired {
		t.Fatalf("after expiry the proxy answers %d, want 407", status)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(popup), chromedp.WaitVisible("#expired")); err != nil {
		t.Fatalf("the popup shows no expiry message: %v", err)
	}
	msg, _ := chromedp.Run(ctx, chromedp.Text("#expired"))
	if !strings.Contains(msg, "expired") {
		t.Errorf("expiry message %q", msg)
	}
}

// proxyCertificate writes a self-signed certificate for the gateway's
// proxy and returns its files and the pin Chromium is told to trust.
func proxyCertificate(t *testing.T, dir string) (cert, key, pin string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: gwIn4},
		IPAddresses: []net.IP{net.ParseIP(gwIn4)},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "proxy.pem"), filepath.Join(dir, "proxy.key")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	parsed, _ := x509.ParseCertificate(der)
	sum := sha256.Sum256(parsed.RawSubjectPublicKeyInfo)
	return cert, key, base64.StdEncoding.EncodeToString(sum[:])
}

// extensionBrowser starts headless Chromium in the client namespace with
// the unpacked extension loaded; chromedp talks to it over the pipe the
// process inherits, so no port crosses namespaces.
func extensionBrowser(t *testing.T, tp *topo, chromium, pin string) context.Context {
	t.Helper()
	ext, err := filepath.Abs("../../extension")
	if err != nil {
		t.Fatal(err)
	}
	ipPath, err := exec.LookPath("ip")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("load-extension", ext),
		chromedp.Flag("disable-extensions-except", ext),
		chromedp.Flag("disable-features", "DisableLoadExtensionCommandLineSwitch,Translate,OptimizationHints,MediaRouter"),
		chromedp.Flag("ignore-certificate-errors-spki-list", pin),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			cmd.Args = append([]string{"ip", "netns", "exec", tp.c, chromium}, cmd.Args[1:]...)
			cmd.Path = ipPath
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		}),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	// Bounds a stuck browser; nothing asserts on speed.
	ctx, cancel3 := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancel3)
	return ctx
}

// extensionID finds the loaded extension's id from its service worker.
func extensionID(t *testing.T, ctx context.Context) string {
	t.Helper()
	for range 100 {
		targets, err := chromedp.Targets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, tg := range targets {
			if rest, ok := strings.CutPrefix(tg.URL, "chrome-extension://"); ok && strings.HasSuffix(tg.URL, "/background.js") {
				return strings.SplitN(rest, "/", 2)[0]
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the extension's service worker did not start")
	return ""
}

// proxyGet fetches the internet host's page from the client host through
// the gateway's proxy with the credential, returning status and body.
func proxyGet(t *testing.T, tp *topo, user, password string) (int, string) {
	t.Helper()
	proxy := &url.URL{Scheme: "https", Host: gwIn4 + ":8443", User: url.UserPassword(user, password)}
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		Proxy:             http.ProxyURL(proxy),
		DialContext:       func(ctx context.Context, _, addr string) (net.Conn, error) { return dialIn(tp.c, addr) },
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // the test's own certificate
		DisableKeepAlives: true,
	}}
	resp, err := hc.Get("http://" + inet4 + "/")
	if err != nil {
		t.Fatalf("request through the proxy: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// expireAccounts ends the paid and trial time of every account in the
// control plane's SQLite database, as time running out would.
func expireAccounts(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	past := time.Now().Add(-time.Hour).UnixMicro()
	if _, err := db.Exec("UPDATE accounts SET paid_until = ?, trial_until = NULL", past); err != nil {
		t.Fatalf("expiring the account: %v", err)
	}
}
