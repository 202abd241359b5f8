package resolver

import (
	_ "embed"
	"fmt"
	"io"
	"strings"
	"veil/internal/config"

	"github.com/miekg/dns"
)

// rootAnchors is the built-in trust anchor; the file says how to update it.
//
//go:embed root-anchors.txt
var rootAnchors string

// anchor is the trust anchor validation starts from: DS records and
// DNSKEYs for one zone, usually the root.
type anchor struct {
	zone string // canonical
	ds   []*dns.DS
	keys []*dns.DNSKEY
}

// loadAnchor reads DS and DNSKEY records in presentation format from
// path, or the built-in root anchor when path is empty. Every record must
// belong to one zone.
func loadAnchor(path string) (*anchor, error) {
	var src io.Reader = strings.NewReader(rootAnchors)
	if path != "" {
		f, err := config.OpenFile(path, config.MaxTextFile)
		if err != nil {
			return nil, fmt.Errorf("reading trust anchor: %w", err)
		}
		defer f.Close()
		src = f
	}
	a := &anchor{}
	zp := dns.NewZoneParser(src, ".", path)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		owner := dns.CanonicalName(rr.Header().Name)
		if a.zone != "" && owner != a.zone {
			return nil, fmt.Errorf("reading trust anchor: records for %s and %s, want one zone", a.zone, owner)
		}
		a.zone = owner
		switch rr := rr.(type) {
		case *dns.DS:
			a.ds = append(a.ds, rr)
		case *dns.DNSKEY:
			a.keys = append(a.keys, rr)
		default:
			return nil, fmt.Errorf("reading trust anchor: %s record, want DS or DNSKEY", dns.TypeToString[rr.Header().Rrtype])
		}
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("reading trust anchor: %w", err)
	}
	if len(a.ds)+len(a.keys) == 0 {
		return nil, fmt.Errorf("reading trust anchor: no DS or DNSKEY records")
	}
	return a, nil
}
