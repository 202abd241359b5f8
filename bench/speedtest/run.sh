#!/usr/bin/env bash
# Benchmark: the speed test's download and upload throughput on loopback,
# side by side with the loopback limit (the same client writing the same
# bytes over the same number of bare TCP connections to a sink that drops
# them) and, when given, LibreSpeed's own Go backend. Each server is
# measured by the same client (bench/speedtest/client: parallel streams
# of garbage.php?ckSize=100 downloads or 20 MiB uploads to empty.php, as
# LibreSpeed's clients make), in alternating rounds; medians reported,
# with the server process's CPU seconds per Gbit moved.
#
# Environment:
#   SPEEDTEST_GO_BIN  path of a speedtest-go binary built from
#                     github.com/librespeed/speedtest-go; unset: that peer
#                     is skipped (said so in the output)
#   DURATION  seconds per run, default 10;  STREAMS default 4;  ROUNDS default 3
set -euo pipefail
cd "$(dirname "$0")/../.."
dur=${DURATION:-10} streams=${STREAMS:-4} rounds=${ROUNDS:-3}
veil_port=18083 peer_port=18084

tmp=$(mktemp -d /tmp/veil-bench-speedtest.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

go build -o "$tmp/" ./cmd/veil ./bench/speedtest/client
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "run.sh: port $1 did not open" >&2; exit 1; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

"$tmp/veil" serve --data "$tmp/data" --http 127.0.0.1:$veil_port --admin-http "" --builtin-gateway=false --log-level warn &
veil_pid=$!
pids+=($veil_pid)
wait_port $veil_port
servers=("veil http://127.0.0.1:$veil_port/speedtest/backend/ $veil_pid")

if [ -n "${SPEEDTEST_GO_BIN:-}" ]; then
	mkdir -p "$tmp/peer"
	printf 'bind_address="127.0.0.1"\nlisten_port=%d\ndatabase_type="none"\nredact_ip_addresses=true\n' $peer_port >"$tmp/peer/settings.toml"
	(cd "$tmp/peer" && exec "$SPEEDTEST_GO_BIN" -c settings.toml >"$tmp/peer/log" 2>&1) &
	peer_pid=$!
	pids+=($peer_pid)
	wait_port $peer_port
	servers+=("speedtest-go http://127.0.0.1:$peer_port/backend/ $peer_pid")
fi

# run NAME BASE PID MODE: one measurement; appends "NAME MODE Mbit/s cpu" to results.
run() {
	local t0 t1 mbps
	t0=$(ticks "$3")
	mbps=$("$tmp/client" -base "$2" -mode "$4" -streams "$streams" -seconds "$dur")
	t1=$(ticks "$3")
	local cpu
	cpu=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v m="$mbps" -v d="$dur" 'BEGIN { printf "%.2f", t / hz / (m * d / 1000) }')
	printf '%s\t%s\t%s\t%s\n' "$1" "$4" "$mbps" "$cpu" >>"$tmp/results"
	printf 'run.sh: %-13s %-8s %6s Mbit/s  server CPU %s s/Gbit\n' "$1" "$4" "$mbps" "$cpu" >&2
}
"$tmp/client" -sink 127.0.0.1:18085 &
pids+=($!)
wait_port 18085
limit() { # bare TCP on loopback, the same client and streams: the limit
	local mbps
	mbps=$("$tmp/client" -base 127.0.0.1:18085 -mode tcp -streams "$streams" -seconds "$dur")
	printf 'loopback\tlimit\t%s\t-\n' "$mbps" >>"$tmp/results"
	printf 'run.sh: %-13s %-8s %6s Mbit/s\n' loopback tcp "$mbps" >&2
}

: >"$tmp/results"
for r in $(seq "$rounds"); do
	limit
	for s in "${servers[@]}"; do
		read -r name base pid <<<"$s"
		run "$name" "$base" "$pid" download
		run "$name" "$base" "$pid" upload
	done
done

median() { sort -g | awk '{v[NR]=$1} END {if (NR == 0) print "NA"; else print v[int((NR+1)/2)]}'; }
col() { awk -F'\t' -v n="$1" -v m="$2" -v c="$3" '$1==n && $2==m {print $c}' "$tmp/results" | median; }
echo
echo "veil $(git rev-parse --short HEAD); $streams streams, ${dur}s per run, median of $rounds rounds; $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg) at end"
echo
echo "| server | download Mbit/s | upload Mbit/s | server CPU s/Gbit (down / up) |"
echo "|---|---:|---:|---|"
echo "| loopback limit (bare TCP, $streams streams) | $(col loopback limit 3) | $(col loopback limit 3) | – |"
for s in "${servers[@]}"; do
	read -r name _ _ <<<"$s"
	echo "| $name | $(col "$name" download 3) | $(col "$name" upload 3) | $(col "$name" download 4) / $(col "$name" upload 4) |"
done
[ -n "${SPEEDTEST_GO_BIN:-}" ] || echo "
speedtest-go: skipped (set SPEEDTEST_GO_BIN to a binary built from github.com/librespeed/speedtest-go)"
