package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"veil/integration/harness"
	"veil/internal/apitypes"
	"veil/internal/cli"
	"veil/internal/client"
	"veil/internal/wg"
)

// TestDeviceCommands drives the device commands as a user types them:
// each wg-config file is a new device with a key of its own (never the
// CLI's), its QR code decodes to the same file, devices lists, renames
// and removes them, and logout takes the CLI's own device off the
// account.
func TestDeviceCommands(t *testing.T) {
	env := harness.Start(t, harness.Options{})
	ctx := context.Background()
	dir := t.TempDir()
	code := env.CreateAccount(t, 30)
	veil := func(args ...string) (string, string, int) {
		t.Helper()
		var out, errOut bytes.Buffer
		rc := cli.Run(ctx, append(args, "--state", dir), &out, &errOut)
		return out.String(), errOut.String(), rc
	}
	must := func(args ...string) string {
		t.Helper()
		out, errOut, rc := veil(args...)
		if rc != 0 {
			t.Fatalf("veil %s: exit %d, %s", strings.Join(args, " "), rc, errOut)
		}
		return out
	}
	list := func() []apitypes.Device {
		t.Helper()
		var devs []apitypes.Device
		if err := json.Unmarshal([]byte(must("devices", "--json")), &devs); err != nil {
			t.Fatal(err)
		}
		return devs
	}
	byName := func(devs []apitypes.Device, name string) *apitypes.Device {
		for i := range devs {
			if devs[i].Name == name {
				return &devs[i]
			}
		}
		t.Fatalf("no device %q in %+v", name, devs)
		return nil
	}
	must("login", code, "--control", env.Svc.URL())
	st, err := client.LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	servers, err := env.API("").Servers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := client.PickServer(servers, "")
	if err != nil {
		t.Fatal(err)
	}

	// A file, then a QR code: two new devices, each file holding its own
	// device's key.
	conf := must("wg-config", "--device", "phone")
	qrText := must("wg-config", "--device", "router", "--qr")
	img, err := harness.TerminalQRImage(qrText, 4)
	if err != nil {
		t.Fatal(err)
	}
	qrConf, err := harness.DecodeQR(img)
	if err != nil {
		t.Fatalf("%v; printed:\n%s", err, qrText)
	}
	devs := list()
	if len(devs) != 3 {
		t.Fatalf("after two exports the account has %d devices, want 3: %+v", len(devs), devs)
	}
	keys := map[string]bool{}
	for name, file := range map[string]string{"phone": conf, "router": qrConf} {
		priv := privateKey(t, file)
		if priv == st.PrivateKey {
			t.Errorf("the %s file holds the CLI's own key", name)
		}
		d := byName(devs, name)
		pub, err := wg.ParseKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		if d.PublicKey != pub.Public().Base64() {
			t.Errorf("the %s file's key is not its device's: %s vs %s", name, pub.Public().Base64(), d.PublicKey)
		}
		if want := client.WGConfig(priv, *d, srv); file != want {
			t.Errorf("%s file:\n%s\nwant\n%s", name, file, want)
		}
		keys[priv] = true
	}
	if len(keys) != 2 {
		t.Error("two exported files share a key")
	}
	if out, _, _ := veil("devices"); !strings.Contains(out, "KEY AGE") || !strings.Contains(out, "router") {
		t.Errorf("devices table:\n%s", out)
	}

	// Rename, then remove by the new name; the CLI's own device needs --force.
	must("devices", "rename", "router", "home router")
	if d := byName(list(), "home router"); d.PublicKey != byName(devs, "router").PublicKey {
		t.Errorf("rename changed the key")
	}
	if _, errOut, rc := veil("devices", "rename", "home router", ""); rc == 0 || !strings.Contains(errOut, "name") {
		t.Errorf("rename to an empty name: exit %d, %s", rc, errOut)
	}
	must("devices", "remove", "home router")
	if _, errOut, rc := veil("devices", "remove", "nothing-so-named"); rc == 0 || !strings.Contains(errOut, "no device") {
		t.Errorf("removing an unknown device: exit %d, %s", rc, errOut)
	}
	if _, errOut, rc := veil("devices", "remove", strconv.FormatInt(st.DeviceID, 10)); rc == 0 || !strings.Contains(errOut, "logout") {
		t.Errorf("removing the CLI's own device without --force: exit %d, %s", rc, errOut)
	}
	if names := deviceNames(list()); len(names) != 2 || names[1] != "phone" {
		t.Errorf("devices after removing the router: %v", names)
	}

	// logout removes the CLI's device and forgets the login.
	must("logout")
	if _, err := os.Stat(filepath.Join(dir, "state.json")); !os.IsNotExist(err) {
		t.Errorf("state after logout: %v", err)
	}
	sess, err := env.API("").Login(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	left, err := env.API(sess.Token).Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if names := deviceNames(left); !slices.Equal(names, []string{"phone"}) {
		t.Errorf("devices after logout: %v, want only the phone", names)
	}

	for _, sh := range []string{"bash", "zsh", "fish", "tcsh"} {
		var out, errOut bytes.Buffer
		rc := cli.Run(ctx, []string{"completion", sh}, &out, &errOut)
		switch {
		case sh == "tcsh" && rc == 0:
			t.Error("completion for an unknown shell succeeded")
		case sh != "tcsh" && (rc != 0 || !strings.Contains(out.String(), "wg-config") && !strings.Contains(out.String(), "__complete")):
			t.Errorf("%s completion: exit %d, %s\n%.300s", sh, rc, errOut.String(), out.String())
		}
	}
}

var privateKeyLine = regexp.MustCompile(`(?m)^PrivateKey = (\S+)$`)

func privateKey(t *testing.T, conf string) string {
	t.Helper()
	m := privateKeyLine.FindStringSubmatch(conf)
	if m == nil {
		t.Fatalf("no PrivateKey in\n%s", conf)
	}
	return m[1]
}

func deviceNames(devs []apitypes.Device) []string {
	var names []string
	for _, d := range devs {
		names = append(names, d.Name)
	}
	return names
}
