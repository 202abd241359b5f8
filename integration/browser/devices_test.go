package browser

import (
	"encoding/base64"
	"encoding/hex"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"veil/integration/harness"
	"veil/internal/client"
	"veil/internal/wg"
)

// TestDeviceManager adds a device on the account page as its owner
// would: the browser makes the key, the page offers the file and draws
// its QR code, and the private key is in none of the requests the page
// made. Then the list shows the device, renames it and removes it.
func TestDeviceManager(t *testing.T) {
	ctx := harness.Chromium(t, 90*time.Second)
	env := harness.Start(t, harness.Options{})
	code := env.CreateAccount(t, 30)
	base := env.Svc.URL()
	rec := harness.Record(t, ctx)
	pd := harness.AddDeviceOnPage(t, ctx, base, code, "phone")
	if !regexp.MustCompile(`^[a-zA-Z0-9_=+.-]{1,15}\.conf$`).MatchString(pd.FileName) {
		t.Errorf("the download is named %q: wg-quick takes the interface name from it", pd.FileName)
	}
	if pd.QR != pd.Download {
		t.Fatalf("the QR code and the download differ:\n%s\n---\n%s", pd.QR, pd.Download)
	}
	priv := configKey(t, pd.QR)
	key, err := wg.ParseKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	tok := loginToken(t, env, code)
	devs, err := env.API(tok).Devices(t.Context())
	if err != nil || len(devs) != 1 {
		t.Fatalf("devices after adding one on the page: %+v, %v", devs, err)
	}
	d := devs[0]
	if d.Name != "phone" || d.PublicKey != key.Public().Base64() {
		t.Errorf("registered %+v; the file's key's public half is %s", d, key.Public().Base64())
	}
	servers, err := env.API("").Servers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := client.PickServer(servers, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := client.WGConfig(priv, d, srv); pd.QR != want {
		t.Errorf("the page's file:\n%s\nwant what veil wg-config writes:\n%s", pd.QR, want)
	}
	checkKeyNotSent(t, rec.Requests(), key, d.PublicKey)

	// The list: name, addresses, date, key age; rename, then remove.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/account"), chromedp.WaitVisible("table.devices")); err != nil {
		t.Fatal(err)
	}
	row := texts(t, ctx, "table.devices tbody tr")[0]
	for _, want := range []string{strings.TrimSuffix(d.IPv4, "/32"), d.CreatedAt.Format(time.DateOnly), "under a day"} {
		if !strings.Contains(row, want) {
			t.Errorf("device row lacks %q: %q", want, row)
		}
	}
	if v := attr(t, ctx, "form.rename input[name=name]", "value"); v != "phone" {
		t.Errorf("rename field holds %q", v)
	}
	err = chromedp.Do(ctx,
		chromedp.Clear("form.rename input[name=name]"),
		chromedp.SendKeys("form.rename input[name=name]", "tablet"),
		chromedp.Submit("form.rename"),
		chromedp.WaitVisible(`p.notice`),
	)
	if err != nil {
		t.Fatalf("renaming: %v", err)
	}
	if devs, _ := env.API(tok).Devices(t.Context()); len(devs) != 1 || devs[0].Name != "tablet" || devs[0].PublicKey != d.PublicKey {
		t.Errorf("after renaming on the page: %+v", devs)
	}
	if err := chromedp.Do(ctx, chromedp.Click("button.remove"), chromedp.WaitNotPresent("table.devices")); err != nil {
		t.Fatalf("removing: %v", err)
	}
	if devs, _ := env.API(tok).Devices(t.Context()); len(devs) != 0 {
		t.Errorf("after removing on the page: %+v", devs)
	}
}

// checkKeyNotSent fails the test if the private key, in any of its
// usual spellings, is in a request; the public key must be in one, or
// the recording saw nothing.
func checkKeyNotSent(t *testing.T, reqs []harness.Request, key wg.Key, public string) {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(key.Base64())
	if err != nil {
		t.Fatal(err)
	}
	forms := []string{key.Base64(), base64.RawURLEncoding.EncodeToString(raw), base64.RawStdEncoding.EncodeToString(raw), hex.EncodeToString(raw)}
	sawPublic := false
	for _, r := range reqs {
		all := r.Method + " " + r.URL + "\n" + strings.Join(r.Headers, "\n") + "\n" + r.Body
		for _, f := range forms {
			if strings.Contains(all, f) || strings.Contains(all, strings.ReplaceAll(f, "+", "%2B")) {
				t.Errorf("the private key left the browser in %s", r)
			}
		}
		sawPublic = sawPublic || strings.Contains(r.Body, public)
	}
	if !sawPublic {
		t.Errorf("no recorded request carries the public key: the recording missed the registration (%d requests)", len(reqs))
	}
	if !slices.ContainsFunc(reqs, func(r harness.Request) bool { return strings.HasSuffix(r.URL, "/static/devices.js") }) {
		t.Error("the recording missed the page's script")
	}
}

func configKey(t *testing.T, conf string) string {
	t.Helper()
	for _, line := range strings.Split(conf, "\n") {
		if k, ok := strings.CutPrefix(line, "PrivateKey = "); ok {
			return k
		}
	}
	t.Fatalf("no private key in\n%s", conf)
	return ""
}
