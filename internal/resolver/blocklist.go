package resolver

import (
	"bufio"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"veil/internal/config"

	"github.com/miekg/dns"
)

// blocklist maps blocked names to the set of categories listing them.
type blocklist struct {
	categories map[string]uint64 // category -> bit
	names      map[string]uint64 // canonical name -> category bits
}

// loadBlocklists reads each category's file. A line is either hosts format
// ("0.0.0.0 name [name...]") or domain-list format ("name", optionally
// "*.name"); "#" starts a comment. Both formats may be mixed.
func loadBlocklists(files map[string]string) (*blocklist, error) {
	b := &blocklist{categories: make(map[string]uint64), names: make(map[string]uint64)}
	cats := make([]string, 0, len(files))
	for c := range files {
		cats = append(cats, c)
	}
	sort.Strings(cats)
	if len(cats) > 64 {
		return nil, fmt.Errorf("loading blocklists: %d categories, at most 64", len(cats))
	}
	for i, c := range cats {
		bit := uint64(1) << i
		b.categories[c] = bit
		if err := b.load(files[c], bit); err != nil {
			return nil, fmt.Errorf("loading blocklist %q: %w", c, err)
		}
	}
	return b, nil
}

func (b *blocklist) load(path string, bit uint64) error {
	f, err := config.OpenFile(path, config.MaxBlocklistFile)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if _, err := netip.ParseAddr(fields[0]); err == nil {
			fields = fields[1:] // hosts format
		} else {
			fields = fields[:1]
		}
		for _, name := range fields {
			name = strings.TrimPrefix(name, "*.")
			switch strings.ToLower(name) {
			case "localhost", "localhost.localdomain", "local", "broadcasthost",
				"ip6-localhost", "ip6-loopback", "ip6-localnet", "ip6-mcastprefix",
				"ip6-allnodes", "ip6-allrouters", "ip6-allhosts", "0.0.0.0":
				continue
			}
			if _, ok := dns.IsDomainName(name); !ok {
				continue
			}
			b.names[dns.CanonicalName(name)] |= bit
		}
	}
	return sc.Err()
}

// mask returns the category bits for the named categories.
func (b *blocklist) mask(categories []string) uint64 {
	var m uint64
	for _, c := range categories {
		m |= b.categories[c]
	}
	return m
}

// blocked reports whether name (canonical) or any parent of it is listed in
// a category of mask.
func (b *blocklist) blocked(name string, mask uint64) bool {
	if mask == 0 || len(b.names) == 0 {
		return false
	}
	for off, end := 0, false; !end; off, end = dns.NextLabel(name, off) {
		if b.names[name[off:]]&mask != 0 {
			return true
		}
	}
	return false
}
