// Command mkasn turns the CSV files of the @ip-location-db/asn package
// (start,end,asn,org) into one MaxMind-format ASN database in the
// GeoLite2-ASN layout, which package geo (and other mmdb readers) can
// read. scripts/geoip.sh runs it: the registry carries that data only as
// CSV.
//
//	go run ./internal/geo/mkasn -o asn.mmdb asn-ipv4.csv asn-ipv6.csv
package main

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

func main() {
	out := flag.String("o", "asn.mmdb", "output file")
	flag.Parse()
	if err := run(*out, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "mkasn:", err)
		os.Exit(1)
	}
}

func run(out string, inputs []string) error {
	if len(inputs) == 0 {
		return errors.New("no input CSV files")
	}
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType: "GeoLite2-ASN",
		Description:  map[string]string{"en": "ASN data from @ip-location-db/asn (RouteViews, DB-IP, NRO; CC BY 4.0)"},
		RecordSize:   24,
	})
	if err != nil {
		return fmt.Errorf("creating tree: %w", err)
	}
	for _, in := range inputs {
		if err := load(tree, in); err != nil {
			return err
		}
	}
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("creating output: %w", err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("writing database: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing database: %w", err)
	}
	return os.Rename(tmp, out)
}

func load(tree *mmdbwriter.Tree, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening csv: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	orgs := map[string]mmdbtype.Map{} // one value per AS keeps the data section small
	for line := 1; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: reading: %w", path, err)
		}
		if len(rec) < 3 {
			continue
		}
		start, end := net.ParseIP(rec[0]), net.ParseIP(rec[1])
		asn, err := strconv.ParseUint(rec[2], 10, 32)
		if start == nil || end == nil || err != nil || asn == 0 {
			continue
		}
		org := ""
		if len(rec) > 3 {
			org = rec[3]
		}
		key := rec[2] + "\x00" + org
		v, ok := orgs[key]
		if !ok {
			v = mmdbtype.Map{
				"autonomous_system_number":       mmdbtype.Uint32(asn),
				"autonomous_system_organization": mmdbtype.String(org),
			}
			orgs[key] = v
		}
		if err := tree.InsertRange(start, end, v); err != nil {
			// Reserved ranges are refused by design; skip them.
			continue
		}
	}
}
