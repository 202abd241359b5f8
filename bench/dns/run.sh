#!/bin/sh
# Benchmark Veil's resolver against Debian's Unbound, side by side, with
# dnsperf: a cache-hit set (names already cached, run for DURATION seconds)
# and a cache-miss set (unique names, once through, each resolved from a
# local root -> TLD -> authoritative hierarchy on 127.0.0.2-4 port 53).
#
# Needs: root (to bind port 53 on loopback), go, dnsperf, unbound.
# Installs nothing unless VEIL_BENCH_INSTALL=1 (then apt-get installs
# dnsperf and unbound). Prints a Markdown section for BENCHMARKS.md.
#
#   sudo bench/dns/run.sh   # DURATION=15 HIT_RUNS=3 HIT_NAMES=1000 MISS_NAMES=20000
#
# VALIDATE=1 signs the hierarchy (DNSSEC, NSEC) and has both resolvers
# validate it from its root's DS (Unbound: module-config "validator
# iterator").
set -eu

DURATION=${DURATION:-15}
HIT_RUNS=${HIT_RUNS:-3}
HIT_NAMES=${HIT_NAMES:-1000}
MISS_NAMES=${MISS_NAMES:-20000}
VEIL_PORT=${VEIL_PORT:-5300}
UNBOUND_PORT=${UNBOUND_PORT:-5301}
THREADS=$(nproc)
VALIDATE=${VALIDATE:-0}

need() { command -v "$1" >/dev/null 2>&1; }
if ! need dnsperf || ! need unbound; then
	if [ "${VEIL_BENCH_INSTALL:-}" = 1 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y dnsperf unbound >/dev/null
	else
		echo "run.sh: dnsperf and unbound are needed; set VEIL_BENCH_INSTALL=1 to apt-get install them" >&2
		exit 1
	fi
fi
# Debian's package may start a system unbound: it is not ours to stop, and it
# does not use our ports.

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

(cd "$ROOT" && go build -o "$WORK/dnsbench" ./bench/dns)

printf '.  3600000  NS  a.root.bench.\na.root.bench.  3600000  A  127.0.0.2\n' >"$WORK/hints.root"
i=0; while [ $i -lt "$HIT_NAMES" ]; do echo "hit$i.zone.bench A"; i=$((i+1)); done >"$WORK/hit.txt"
i=0; while [ $i -lt "$MISS_NAMES" ]; do echo "miss$i.zone.bench A"; i=$((i+1)); done >"$WORK/miss.txt"

MODULES=iterator; ANCHOR_CONF=""; SIGN=""; VEIL_ANCHOR=""
if [ "$VALIDATE" = 1 ]; then
	MODULES="validator iterator"
	ANCHOR_CONF="    trust-anchor-file: \"$WORK/anchor.ds\""
	SIGN="-sign $WORK/anchor.ds"
	VEIL_ANCHOR="-trust-anchor $WORK/anchor.ds"
fi
cat >"$WORK/unbound.conf" <<CONF
server:
    interface: 127.0.0.1
    port: $UNBOUND_PORT
    do-ip6: no
    do-not-query-localhost: no
    access-control: 127.0.0.0/8 allow
    root-hints: "$WORK/hints.root"
    module-config: "$MODULES"
$ANCHOR_CONF
    num-threads: $THREADS
    so-reuseport: yes
    so-rcvbuf: 4m
    qname-minimisation: yes
    use-caps-for-id: yes
    chroot: ""
    username: ""
    directory: "$WORK"
    pidfile: "$WORK/unbound.pid"
    use-syslog: no
    logfile: ""
    verbosity: 0
    msg-cache-size: 64m
    rrset-cache-size: 128m
remote-control:
    control-enable: no
CONF

start() { # name, command...
	name=$1; shift
	"$@" >"$WORK/$name.log" 2>&1 &
	PIDS="$PIDS $!"
}
# shellcheck disable=SC2086 # SIGN and VEIL_ANCHOR are flags or nothing
start hierarchy "$WORK/dnsbench" -hierarchy $SIGN
n=0; until grep -q ready "$WORK/hierarchy.log" 2>/dev/null; do
	n=$((n+1)); [ $n -lt 50 ] || { echo "run.sh: hierarchy did not start" >&2; cat "$WORK/hierarchy.log" >&2; exit 1; }
	sleep 0.2
done
# shellcheck disable=SC2086
start veil "$WORK/dnsbench" -resolver -addr "127.0.0.1:$VEIL_PORT" -root-hints "$WORK/hints.root" $VEIL_ANCHOR
start unbound unbound -d -c "$WORK/unbound.conf"
for port in $VEIL_PORT $UNBOUND_PORT; do
	n=0
	until [ "$(echo 'ready.zone.bench A' | dnsperf -s 127.0.0.1 -p "$port" -n 1 -t 1 2>/dev/null | awk '/Queries completed/ {print $3}')" = 1 ]; do
		n=$((n+1)); [ $n -lt 50 ] || { echo "run.sh: server on port $port did not start" >&2; cat "$WORK"/*.log >&2; exit 1; }
		sleep 0.2
	done
done

# perf PORT ARGS...: prints "qps avg_ms lost". Every answer must be
# NOERROR: a resolver answering SERVFAIL (as Unbound did while the
# hierarchy could not answer its priming query) is fast and resolves
# nothing, so such a run stops the benchmark.
perf() {
	port=$1; shift
	dnsperf -s 127.0.0.1 -p "$port" -c 4 -q 200 "$@" >"$WORK/dnsperf.out" 2>&1
	if ! grep -q 'Response codes: *NOERROR [0-9]* (100.00%)$' "$WORK/dnsperf.out"; then
		echo "run.sh: resolver on port $port did not answer NOERROR to every query:" >&2
		grep 'Response codes' "$WORK/dnsperf.out" >&2
		exit 1
	fi
	awk '
		/Queries lost/ {lost=$3}
		/Queries per second/ {qps=$4}
		/Average Latency/ {avg=$4*1000}
		END {printf "%.0f %.3f %s\n", qps, avg, lost}' "$WORK/dnsperf.out"
}
# pct PORT DATA: latency percentiles (ms) at a fixed 5000 qps, so that
# per-query reporting does not limit either server.
pct() {
	dnsperf -s 127.0.0.1 -p "$1" -d "$2" -l 5 -Q 5000 -v 2>/dev/null | awk '/^> / {print $NF*1000}' | sort -n | awk '
		{v[NR]=$1} END {if (NR==0) {print "- - -"; exit}
		printf "%.3f %.3f %.3f\n", v[int(NR*0.50)+1], v[int(NR*0.99)+1], v[int(NR*0.999)+1]}'
}

# Cache-miss set first, on empty caches: each name once.
VEIL_MISS=$(perf "$VEIL_PORT" -d "$WORK/miss.txt" -n 1)
UNB_MISS=$(perf "$UNBOUND_PORT" -d "$WORK/miss.txt" -n 1)
# Warm the hit set, then alternate runs so that background load hits both.
perf "$VEIL_PORT" -d "$WORK/hit.txt" -n 1 >/dev/null
perf "$UNBOUND_PORT" -d "$WORK/hit.txt" -n 1 >/dev/null
VEIL_RUNS=""; UNB_RUNS=""
r=0; while [ $r -lt "$HIT_RUNS" ]; do
	VEIL_RUNS="$VEIL_RUNS$(perf "$VEIL_PORT" -d "$WORK/hit.txt" -l "$DURATION")
"
	UNB_RUNS="$UNB_RUNS$(perf "$UNBOUND_PORT" -d "$WORK/hit.txt" -l "$DURATION")
"
	r=$((r+1))
done
VEIL_PCT=$(pct "$VEIL_PORT" "$WORK/hit.txt")
UNB_PCT=$(pct "$UNBOUND_PORT" "$WORK/hit.txt")

f() { echo "$1" | cut -d' ' -f"$2"; }
# median RUNS: the run (line) with the median qps; all: every run's qps.
median() { printf '%s' "$1" | sort -n | awk '{v[NR]=$0} END {print v[int((NR+1)/2)]}'; }
all() { printf '%s' "$1" | cut -d' ' -f1 | paste -sd/ - | sed 's#/# / #g'; }
VEIL_HIT=$(median "$VEIL_RUNS")
UNB_HIT=$(median "$UNB_RUNS")

cat <<MD
### DNS resolver: Veil vs Unbound (dnsperf)

$(date -u +%Y-%m-%d), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), load average $(cut -d' ' -f1-3 /proc/loadavg),
$(go version | cut -d' ' -f3), Unbound $(unbound -V 2>/dev/null | awk '/^Version/ {print $2; exit}'), $(dnsperf -h 2>&1 | awk '/^Version/ {print "dnsperf " $2}').
Command: \`sudo bench/dns/run.sh\` (DURATION=$DURATION HIT_RUNS=$HIT_RUNS HIT_NAMES=$HIT_NAMES MISS_NAMES=$MISS_NAMES;
dnsperf -c 4 -q 200; Unbound num-threads $THREADS, modules "$MODULES", qname-minimisation and 0x20 on;
DNSSEC validation $( [ "$VALIDATE" = 1 ] && echo "on in both (VALIDATE=1: the hierarchy signed, ECDSA P-256, NSEC)" || echo off);
Veil with GOMAXPROCS $THREADS, rate limit off; both with $THREADS UDP sockets on SO_REUSEPORT and 4 MB
receive buffers). Hit qps: median of $HIT_RUNS alternating runs (each run in brackets).
Percentiles: cache-hit set at a fixed 5000 qps.

| set | resolver | qps | avg latency ms | lost | p50 / p99 / p99.9 ms |
|---|---|---:|---:|---:|---|
| cache hit | Veil | $(f "$VEIL_HIT" 1) ($(all "$VEIL_RUNS")) | $(f "$VEIL_HIT" 2) | $(f "$VEIL_HIT" 3) | $(f "$VEIL_PCT" 1) / $(f "$VEIL_PCT" 2) / $(f "$VEIL_PCT" 3) |
| cache hit | Unbound | $(f "$UNB_HIT" 1) ($(all "$UNB_RUNS")) | $(f "$UNB_HIT" 2) | $(f "$UNB_HIT" 3) | $(f "$UNB_PCT" 1) / $(f "$UNB_PCT" 2) / $(f "$UNB_PCT" 3) |
| cache miss ($MISS_NAMES names, 3-level hierarchy) | Veil | $(f "$VEIL_MISS" 1) | $(f "$VEIL_MISS" 2) | $(f "$VEIL_MISS" 3) | |
| cache miss ($MISS_NAMES names, 3-level hierarchy) | Unbound | $(f "$UNB_MISS" 1) | $(f "$UNB_MISS" 2) | $(f "$UNB_MISS" 3) | |

Veil cache-hit qps is $(awk -v a="$(f "$VEIL_HIT" 1)" -v b="$(f "$UNB_HIT" 1)" 'BEGIN {printf "%.0f%%", 100*a/b}') of Unbound's (target: 80% or more).
MD
