package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// record is what a tun-mode connection has changed on the system, kept in
// the state directory so that `veil disconnect` can undo it even when the
// process that made the changes is dead.
type record struct {
	PID        int    `json:"pid"`
	Interface  string `json:"interface"`
	Fwmark     uint32 `json:"fwmark"`
	KillSwitch bool   `json:"kill_switch"`
	// ResolvConf is the file whose original content is in dnsBackupFile.
	ResolvConf string `json:"resolv_conf,omitempty"`
	// API are the control plane's addresses, resolved while the system's
	// resolver still answered, so that a later `veil connect` can reach
	// the control plane through a kill switch this connection leaves.
	API []netip.AddrPort `json:"api,omitempty"`
}

const (
	recordFile    = "connection.json"
	dnsBackupFile = "resolv.conf.backup"
	socketFile    = "veil.sock"
)

func loadRecord(dir string) (*record, error) {
	b, err := os.ReadFile(filepath.Join(dir, recordFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading connection record: %w", err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w (`veil disconnect` clears it): %v", errRecordDamaged, err)
	}
	return &r, nil
}

// errRecordDamaged is returned for a record that cannot be read.
var errRecordDamaged = errors.New("the connection record is damaged")

// defaultRecord is what a tun-mode connection with the defaults sets up:
// what to undo when its record is damaged.
func defaultRecord() *record {
	return &record{Interface: DefaultTUNName, Fwmark: DefaultFwmark, KillSwitch: true, ResolvConf: DefaultResolvConf}
}

func (r *record) save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, _ := json.Marshal(r)
	return writeFileAtomic(filepath.Join(dir, recordFile), b)
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// setDNS points resolv at the gateway's resolvers. The original file is
// kept in dir first, once: a second connect after a crash does not back up
// Veil's own file over the original. The file is rewritten in place, not
// replaced, because it may be a bind mount (ip netns exec) or a link.
func setDNS(dir, resolv string, servers []netip.Addr) error {
	if len(servers) == 0 {
		return errors.New("the gateway offers no DNS resolver")
	}
	backup := filepath.Join(dir, dnsBackupFile)
	if _, err := os.Stat(backup); errors.Is(err, os.ErrNotExist) {
		orig, err := os.ReadFile(resolv)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("reading %s: %w", resolv, err)
		}
		if err := writeFileAtomic(backup, orig); err != nil {
			return fmt.Errorf("backing up %s: %w", resolv, err)
		}
	}
	var b strings.Builder
	b.WriteString("# Written by veil connect; `veil disconnect` restores the original.\n")
	for _, s := range servers {
		b.WriteString("nameserver " + s.String() + "\n")
	}
	if err := os.WriteFile(resolv, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("setting DNS in %s: %w", resolv, err)
	}
	return nil
}

// restoreDNS puts the backed-up file back, if there is a backup.
func restoreDNS(dir, resolv string) error {
	backup := filepath.Join(dir, dnsBackupFile)
	orig, err := os.ReadFile(backup)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the DNS backup: %w", err)
	}
	if err := os.WriteFile(resolv, orig, 0o644); err != nil {
		return fmt.Errorf("restoring %s: %w", resolv, err)
	}
	return os.Remove(backup)
}
