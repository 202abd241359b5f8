package e2e

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"veil/integration/harness"
	"veil/internal/config"
)

// TestDNSBlocking follows a device's choice of blocking categories from
// the API through the peer map to the gateway's resolver: a name on the
// operator's ads list fails for the device that chose "ads", resolves for
// one that did not, and resolves again once the choice is withdrawn.
func TestDNSBlocking(t *testing.T) {
	loop := netip.MustParseAddr("127.0.0.1")
	ad := randomLabel(t, "ads") + ".veil-e2e.test"
	dns := harness.StartDNS(t, harness.DNSConfig{Zone: "veil-e2e.test", Records: map[string]netip.Addr{ad: loop}})
	echo := harness.StartEcho(t, loop)
	list := filepath.Join(t.TempDir(), "ads.txt")
	if err := os.WriteFile(list, []byte("# operator's ads list\n"+ad+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := harness.Start(t, harness.Options{DNS: dns, Config: func(c *config.Config) {
		c.DNSBlocklists = []string{"ads=" + list}
	}})
	url := "http://" + net.JoinHostPort(ad, strconv.Itoa(echo.Port)) + "/"

	blocked := env.Login(t, t.TempDir(), env.CreateAccount(t, 30))
	open := env.Login(t, t.TempDir(), env.CreateAccount(t, 30))
	if _, err := env.API(blocked.Token).SetDeviceBlock(context.Background(), blocked.DeviceID, []string{"ads"}); err != nil {
		t.Fatal(err)
	}
	bt := env.Up(t, blocked, clientAddr)
	ot := env.Up(t, open, clientAddr)
	bweb := harness.SOCKSClient(t, bt.SOCKSAddr(), 20*time.Second)
	oweb := harness.SOCKSClient(t, ot.SOCKSAddr(), 20*time.Second)

	if _, err := harness.Get(oweb, url); err != nil {
		t.Fatalf("a device without blocking cannot reach %s: %v", ad, err)
	}
	waitFor(t, "the blocked device's name to fail", func() bool {
		_, err := harness.Get(bweb, url)
		return err != nil
	})
	// Its tunnel works: only the name is refused.
	if _, err := harness.Get(bweb, echo.URL+"/"); err != nil {
		t.Fatalf("the blocked device cannot reach the server by address: %v", err)
	}

	// Withdrawn: the name resolves again for that device.
	if _, err := env.API(blocked.Token).SetDeviceBlock(context.Background(), blocked.DeviceID, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the unblocked device's name to resolve", func() bool {
		_, err := harness.Get(bweb, url)
		return err == nil
	})
}

// waitFor polls cond for up to 30 s (a bound that fails the test, not a
// measure of speed).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
