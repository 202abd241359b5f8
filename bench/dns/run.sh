#!/bin/sh
# Benchmark Veil's resolver against Debian's Unbound, side by side, with
# dnsperf: for a signed and an unsigned set of names, HIT_RUNS rounds,
# each of a cache-miss run (each name once, resolved from a local root ->
# TLD -> authoritative hierarchy on 127.0.0.2-5 port 53), a cache-hit run
# (names already cached, DURATION seconds) and a latency run at a fixed
# 5,000 qps (LAT_DURATION seconds).
#
# Every run is cut into SLICES slices, the resolvers taking turns slice by
# slice (the order reversed after each slice), and each resolver's figure
# for the round is pooled over its slices: all its queries over all its
# time, all its latencies in one distribution. The machine's speed drifts
# by ±10% from one second to the next and its CPUs are taken away for up
# to a few milliseconds at random (the script measures these gaps first,
# `dnsbench -jitter`); resolvers measured one after the other in long runs
# compared the drift more than the resolvers.
#
# VALIDATE=1 (the default) signs the hierarchy (DNSSEC, ECDSA P-256, NSEC)
# but for plain.bench., an insecure delegation, and both resolvers validate
# from its root's DS (Unbound: module-config "validator iterator"). A third
# resolver, Veil with validation off, measures what validation costs.
# VALIDATE=0: nothing signed, nobody validates.
#
# PIN=1 (the default on a machine of two or more CPUs) puts dnsperf and the
# hierarchy, the load and the internet, on CPU 0 and every resolver on the
# others (taskset): sharing all cores, the kernel's placing of dnsperf's
# threads beside a resolver's decides a round's figures more than either
# resolver does (±30% in hit qps, 0.3-3.6 ms in p99.9 from one round to
# the next). PIN=0 shares every core among all.
#
# Needs: root (to bind port 53 on loopback), go, dnsperf. Unbound is the
# binary UNBOUND names (Debian's package: UNBOUND=/usr/sbin/unbound); with
# UNBOUND unset, Veil runs alone and the script says so. Prints a Markdown
# section for bench/dns/RESULTS.md.
#
#   sudo UNBOUND=/usr/sbin/unbound bench/dns/run.sh   # DURATION=10 LAT_DURATION=20 SLICES=10 HIT_RUNS=3 HIT_NAMES=1000 MISS_NAMES=20000
set -eu

DURATION=${DURATION:-10}
LAT_DURATION=${LAT_DURATION:-20}
SLICES=${SLICES:-10}
HIT_RUNS=${HIT_RUNS:-3}
HIT_NAMES=${HIT_NAMES:-1000}
MISS_NAMES=${MISS_NAMES:-20000} # per round, split into SLICES files
VEIL_PORT=${VEIL_PORT:-5300}
UNBOUND_PORT=${UNBOUND_PORT:-5301}
VEIL_NOVAL_PORT=${VEIL_NOVAL_PORT:-5302}
VALIDATE=${VALIDATE:-1}
PIN=${PIN:-1}
[ "$(nproc)" -ge 2 ] || PIN=0
# LOAD and RESOLVER prefix a command to run it where the load runs or
# where the resolvers do. THREADS: each resolver's threads, one per CPU it
# may use.
LOAD=""; RESOLVER=""; THREADS=$(nproc)
if [ "$PIN" = 1 ]; then
	LOAD_CPUS=0
	SERVER_CPUS=1-$(($(nproc) - 1))
	THREADS=$(($(nproc) - 1))
	LOAD="taskset -c $LOAD_CPUS"
	RESOLVER="taskset -c $SERVER_CPUS"
fi
UNBOUND=${UNBOUND:-}

if ! command -v dnsperf >/dev/null 2>&1; then
	echo "run.sh: dnsperf is needed (apt-get install dnsperf)" >&2
	exit 1
fi
if [ -z "$UNBOUND" ]; then
	echo "run.sh: UNBOUND is not set: skipping Unbound, Veil runs alone (UNBOUND=/usr/sbin/unbound after apt-get install unbound)" >&2
elif [ ! -x "$UNBOUND" ]; then
	echo "run.sh: UNBOUND=$UNBOUND is not an executable" >&2
	exit 1
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
# The sets: signed = zone.bench. (secure with VALIDATE=1), unsigned =
# plain.bench.
SETS="signed unsigned"
zone() { [ "$1" = signed ] && echo zone.bench || echo plain.bench; }
for set in $SETS; do
	z=$(zone "$set")
	awk -v n="$HIT_NAMES" -v z="$z" 'BEGIN {for (i = 0; i < n; i++) print "hit" i "." z " A"}' >"$WORK/hit-$set.txt"
	# miss-SET-ROUND-SLICE.txt: names no resolver has seen, each once.
	awk -v n="$MISS_NAMES" -v runs="$HIT_RUNS" -v k="$SLICES" -v z="$z" -v w="$WORK" -v set="$set" 'BEGIN {
		for (i = 0; i < n * runs; i++) print "miss" i "." z " A" >(w "/miss-" set "-" int(i / n) "-" int((i % n) * k / n) ".txt")
	}'
done

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
# shellcheck disable=SC2086 # LOAD, RESOLVER, SIGN and VEIL_ANCHOR are words or nothing
start hierarchy $LOAD "$WORK/dnsbench" -hierarchy -hits "$HIT_NAMES" -misses $((MISS_NAMES * HIT_RUNS)) $SIGN
n=0; until grep -q ready "$WORK/hierarchy.log" 2>/dev/null; do # signing takes a while
	n=$((n+1)); [ $n -lt 900 ] || { echo "run.sh: hierarchy did not start" >&2; cat "$WORK/hierarchy.log" >&2; exit 1; }
	sleep 0.2
done
# shellcheck disable=SC2086
start veil $RESOLVER "$WORK/dnsbench" -resolver -addr "127.0.0.1:$VEIL_PORT" -root-hints "$WORK/hints.root" $VEIL_ANCHOR
# RESOLVERS: name:port of each resolver measured.
RESOLVERS="veil:$VEIL_PORT"
if [ -n "$UNBOUND" ]; then
	start unbound $RESOLVER "$UNBOUND" -d -c "$WORK/unbound.conf"
	RESOLVERS="$RESOLVERS unbound:$UNBOUND_PORT"
fi
if [ "$VALIDATE" = 1 ]; then
	start veil-noval $RESOLVER "$WORK/dnsbench" -resolver -addr "127.0.0.1:$VEIL_NOVAL_PORT" -root-hints "$WORK/hints.root"
	RESOLVERS="$RESOLVERS veil-noval:$VEIL_NOVAL_PORT"
fi
for r in $RESOLVERS; do
	port=${r#*:}
	n=0
	until [ "$(echo 'ns.zone.bench A' | dnsperf -s 127.0.0.1 -p "$port" -n 1 -t 1 2>/dev/null | awk '/Queries completed/ {print $3}')" = 1 ]; do
		n=$((n+1)); [ $n -lt 50 ] || { echo "run.sh: server on port $port did not start" >&2; cat "$WORK"/*.log >&2; exit 1; }
		sleep 0.2
	done
done

# perf PORT ARGS...: prints "completed seconds": the queries answered and
# the run's time. Every answer must be NOERROR: a resolver answering
# SERVFAIL (as Unbound did while the hierarchy could not answer its
# priming query) is fast and resolves nothing, so such a run stops the
# benchmark.
perf() {
	port=$1; shift
	$LOAD dnsperf -s 127.0.0.1 -p "$port" -c 4 -q 200 "$@" >"$WORK/dnsperf.out" 2>&1
	noerror "$port"
	awk '
		/Queries completed/ {n=$3}
		/Run time/ {t=$4}
		END {print n, t}' "$WORK/dnsperf.out"
}
noerror() {
	if ! grep -q 'Response codes: *NOERROR [0-9]* (100.00%)$' "$WORK/dnsperf.out"; then
		echo "run.sh: resolver on port $1 did not answer NOERROR to every query:" >&2
		grep 'Response codes' "$WORK/dnsperf.out" >&2
		exit 1
	fi
}
# lat PORT DATA SECONDS: each query's latency (ms) at a fixed 5,000 qps,
# so that per-query reporting does not limit either server. dnsperf
# writes to a file; the parsing waits until the run is over, off the
# measured CPUs' time.
lat() {
	$LOAD dnsperf -s 127.0.0.1 -p "$1" -d "$2" -l "$3" -Q 5000 -v >"$WORK/dnsperf.out" 2>&1
	noerror "$1"
	awk '/^> / {print $NF*1000}' "$WORK/dnsperf.out"
}
# qps FILE: "completed seconds" lines pooled into one rate.
qps() { awk '{n += $1; t += $2} END {printf "%.0f\n", n / t}' "$1"; }
# pct FILE: the 50th, 99th and 99.9th percentiles of the latencies in FILE.
pct() {
	sort -n "$1" | awk '{v[NR]=$1} END {if (NR==0) {print "- - -"; exit}
		printf "%.3f %.3f %.3f\n", v[int(NR*0.50)+1], v[int(NR*0.99)+1], v[int(NR*0.999)+1]}'
}

# reversed LIST: the words of LIST in reverse order.
reversed() { out=""; for w in $1; do out="$w $out"; done; echo "$out"; }
RES="$WORK/results"; mkdir -p "$RES"
# The resolvers' CPU, idle: how long the kernel or the hypervisor took it
# away from a runnable thread.
JITTER=$($RESOLVER "$WORK/dnsbench" -jitter 5s)
HIT_SLICE=$(awk -v d="$DURATION" -v k="$SLICES" 'BEGIN {print d / k}')
LAT_SLICE=$(awk -v d="$LAT_DURATION" -v k="$SLICES" 'BEGIN {print d / k}')
# sliced KIND SET ROUND: one round's run of KIND, slice by slice, the
# resolvers taking turns; each resolver's slices go to one file.
order=$RESOLVERS
sliced() {
	k=0; while [ $k -lt "$SLICES" ]; do
		for r in $order; do
			port=${r#*:}; out="$WORK/slices.${r%%:*}"
			case $1 in
			miss) perf "$port" -d "$WORK/miss-$2-$3-$k.txt" -n 1 >>"$out" ;;
			hit) perf "$port" -d "$WORK/hit-$2.txt" -l "$HIT_SLICE" >>"$out" ;;
			lat) lat "$port" "$WORK/hit-$2.txt" "$LAT_SLICE" >>"$out" ;;
			esac
		done
		order=$(reversed "$order")
		k=$((k+1))
	done
}
for set in $SETS; do
	# Warm the hit set.
	for r in $RESOLVERS; do perf "${r#*:}" -d "$WORK/hit-$set.txt" -n 1 >/dev/null; done
	i=0; while [ $i -lt "$HIT_RUNS" ]; do
		for kind in miss hit lat; do
			for r in $RESOLVERS; do : >"$WORK/slices.${r%%:*}"; done
			sliced $kind "$set" $i
			for r in $RESOLVERS; do
				n=${r%%:*}
				case $kind in
				lat) pct "$WORK/slices.$n" >>"$RES/$set.$n.pct" ;;
				*) qps "$WORK/slices.$n" >>"$RES/$set.$n.$kind" ;;
				esac
			done
		done
		i=$((i+1))
	done
done

# runs SET NAME METRIC [FIELD]: every run's figure, " / " between.
runs() { cut -d' ' -f"${4:-1}" "$RES/$1.$2.$3" | paste -sd/ - | sed 's#/# / #g'; }
# ratios SET A B METRIC [FIELD]: A's figure over B's, run by run, as percentages.
ratios() {
	paste -d' ' "$RES/$1.$2.$4" "$RES/$1.$3.$4" | awk -v f="${5:-1}" '{n = NF / 2; printf "%s%.0f%%", (NR > 1 ? " / " : ""), 100 * $f / $(n + f)} END {print ""}'
}
has() { [ -f "$RES/signed.$1.hit" ]; }

cat <<MD
### DNS resolver: Veil vs Unbound (dnsperf)

$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), load average at the end $(cut -d' ' -f1-3 /proc/loadavg),
$(go version | cut -d' ' -f3), $( [ -n "$UNBOUND" ] && "$UNBOUND" -V 2>/dev/null | awk '/^Version/ {print "Unbound " $2; exit}' || echo "no Unbound (UNBOUND unset)"), $(dnsperf -h 2>&1 | awk '/^Version/ {print "dnsperf " $2}'), at $(cd "$ROOT" && git rev-parse --short HEAD).
Command: \`UNBOUND=${UNBOUND:-} DURATION=$DURATION LAT_DURATION=$LAT_DURATION SLICES=$SLICES HIT_RUNS=$HIT_RUNS HIT_NAMES=$HIT_NAMES MISS_NAMES=$MISS_NAMES VALIDATE=$VALIDATE PIN=$PIN bench/dns/run.sh\`
(dnsperf -c 4 -q 200, no EDNS; Unbound num-threads $THREADS, modules "$MODULES", qname-minimisation and 0x20 on;
Veil GOMAXPROCS $THREADS, rate limit off; all on $THREADS SO_REUSEPORT UDP sockets with 4 MB receive buffers;
$( [ "$PIN" = 1 ] && echo "dnsperf and the hierarchy on CPU $LOAD_CPUS, the resolvers on CPU $SERVER_CPUS" || echo "all processes share every CPU")).
DNSSEC validation: $( [ "$VALIDATE" = 1 ] && echo "on (root, bench. and zone.bench. signed; plain.bench. an insecure delegation); veil-noval is Veil with validation off" || echo "off, nothing signed").
$HIT_RUNS rounds; each round: miss, $MISS_NAMES new names once each; hit, $HIT_NAMES cached names for ${DURATION} s;
latency, the hit set at a fixed 5,000 qps for ${LAT_DURATION} s; each run in $SLICES slices, the resolvers taking turns, pooled per resolver.
The resolvers' CPU, idle, before the rounds: $JITTER.

| set | resolver | miss qps, per run | hit qps, per run | p50 / p99 / p99.9 ms, per run |
|---|---|---:|---|---|
MD
for set in $SETS; do
	for r in $RESOLVERS; do
		n=${r%%:*}
		echo "| $set | $n | $(runs "$set" "$n" miss) | $(runs "$set" "$n" hit) | $(awk '{printf "%s%s / %s / %s", (NR > 1 ? "; " : ""), $1, $2, $3}' "$RES/$set.$n.pct") |"
	done
done
echo
if has unbound; then
	for set in $SETS; do
		echo "- $set: Veil / Unbound: hits $(ratios "$set" veil unbound hit) (target ≥ 90% in every run); misses $(ratios "$set" veil unbound miss) (target ≥ 100%); p99.9 $(ratios "$set" veil unbound pct 3) of Unbound's (target ≤ 200%)."
	done
fi
if has veil-noval; then
	for set in $SETS; do
		echo "- $set: Veil validating / Veil not validating: hits $(ratios "$set" veil veil-noval hit); misses $(ratios "$set" veil veil-noval miss)."
	done
fi
