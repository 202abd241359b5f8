package resolver

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestNothingLogged resolves distinctive names with debug logging on and
// checks that neither the names, the answers nor the client address
// appear in the log or in any file under the resolver's temporary dir.
func TestNothingLogged(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	h := newHierarchy(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	blocked := writeFile(t, tmp, "ads.txt", "zqxsecretblocked.example.test\n")
	clock := newTestClock()
	r := newTestResolver(t, h, Config{
		Logger:      logger,
		Clock:       clock.now,
		Blocklists:  map[string]string{"ads": blocked},
		BlockPolicy: func(netip.Addr) []string { return []string{"ads"} },
		Allow:       func(netip.Addr) bool { return true },
	})
	client := "127.0.0.77"
	for _, name := range []string{
		"zqxsecretanswer.example.test.", // NXDOMAIN
		"zqxsecretblocked.example.test.",
		"www.example.test.",
		"alias.example.test.",
		"zqxsecretfail.bad.test.", // fails
		"www.zqxsecrettld.",
	} {
		for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeANY} {
			w := &fakeWriter{remote: udpFrom(client)}
			r.ServeDNS(w, query(name, qtype))
		}
	}
	h.Stop()
	clock.advance(2 * maxTTL)
	r.Resolve(context.Background(), "www.example.test.", dns.TypeA) // fails, logged as such
	if logs.Len() == 0 {
		t.Fatal("no log output at all: the test would prove nothing")
	}
	secrets := []string{"zqxsecret", "example.test", "hoster.alt", "192.0.2.", client}
	check := func(where, text string) {
		for _, s := range secrets {
			if strings.Contains(strings.ToLower(text), s) {
				t.Errorf("%s contains %q", where, s)
			}
		}
	}
	check("log output", logs.String())
	filepath.WalkDir(tmp, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path == blocked {
			return err
		}
		b, err := os.ReadFile(path)
		if err == nil {
			check(path, string(b))
		}
		return nil
	})
}
