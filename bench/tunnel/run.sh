#!/usr/bin/env bash
# Benchmark: iperf3 through three network namespaces,
# client — gateway — internet, joined only by veth pairs, side by side in
# one run:
#   veth         plain routing through the gateway namespace (the limit)
#   wg           plain wireguard-go (bench/tunnel/wgplain, the same module
#                version as Veil) configured with `wg`, forwarding and an
#                nftables masquerade on the gateway
#   wg/full      (not run unless named) wg with the client routing everything
#                as wg-quick does (fwmark, policy rules, src_valid_mark), as
#                veil-tun's client does: the like-for-like baseline
#   wg/sid       (not run unless named) wg with the client started by
#                setsid, in a session (so a scheduler autogroup) of its own
#   veil-tun     `veil connect --mode tun` (kill switch on, the default) to
#                `veil gateway --mode tun`
#   veil-tun/tls   veil-tun with --transport tls: WireGuard over TLS on
#                TCP 443, as on a network that blocks UDP
#   veil-tun/quic  veil-tun with --transport quic: WireGuard in QUIC
#                datagrams on UDP 443
#   veil-tun/noks  (not run unless named in PATHS) veil-tun with
#                --kill-switch=false, to see what the kill switch costs
#   wg/veil-gw   (not run unless named) the wgplain client, configured from
#                `veil wg-config`, to `veil gateway --mode tun`
#   veil-tun/ns  `veil connect --mode tun` to `veil serve`'s built-in
#                netstack gateway
#   veil-proxy   `veil connect --mode proxy` to `veil gateway --mode tun`;
#                iperf3 speaks no SOCKS, so bench/tunnel/socksrelay carries
#                its TCP connections (CONNECT) and UDP stream (UDP
#                ASSOCIATE) through the SOCKS5 proxy
#   veil-proxy/ns  the same to the built-in netstack gateway
# For each: one TCP stream and one UDP stream (receiver's Mbit/s and loss),
# the UDP stream at the highest rate the path carries with at most
# UDP_LOSS per cent loss (found by bisection before the measured run),
# and CPU seconds per Gbit transferred: of the tunnel's own processes
# (client and gateway, from /proc/PID/stat) and of the whole host (from
# /proc/stat: iperf3, the kernel and anything else running).
# Prints a Markdown table of medians over ROUNDS rounds; in each round
# every path runs once, so that load from elsewhere spreads over all, in
# an order that rotates from round to round; and, for tun mode against
# wireguard-go, the median of the ratios of the two paths' runs in the
# same round besides the ratio of the medians.
#
# Run as root:  bench/tunnel/run.sh
# Environment:
#   DURATION  seconds per iperf3 run, default 10;  ROUNDS default 3
#   UDP_RATE  iperf3 -b for UDP instead of the search (0: as fast as the
#             sender can, which measures a flood at ~90% loss, not a rate
#             anyone gets); UDP_LEN datagram payload, default 1360 (fits
#             every path's MTU)
#   UDP_LOSS  loss the search accepts, per cent, default 1; UDP_MAX its
#             upper bound in Mbit/s, default 4000; UDP_STEPS bisections,
#             default 8 (a ratio of 1.7% between the last two rates);
#             UDP_STEP_DURATION seconds per try, default 3
#   PATHS     which paths, default "veth wg veil-tun veil-tun/tls veil-tun/quic
#             veil-tun/ns veil-proxy veil-proxy/ns"
#   VEIL_SRC  source tree veil is built from, default this repository
#   VEIL_BENCH_INSTALL=1  apt-get install what is missing (nothing otherwise)
#   KEEP_LOGS=1  keep the temporary directory (logs, iperf3 JSON)
#   PERF=1    also record a perf profile of the tunnel processes in each run
#             (costs CPU: figures from such a run are not comparable);
#             with KEEP_LOGS=1 the top symbols stay in *.top files
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
dur=${DURATION:-10} rounds=${ROUNDS:-3}
udp_rate=${UDP_RATE:-search} udp_len=${UDP_LEN:-1360}
udp_loss=${UDP_LOSS:-1} udp_max=${UDP_MAX:-4000} udp_steps=${UDP_STEPS:-8} udp_step_dur=${UDP_STEP_DURATION:-3}
paths=${PATHS:-"veth wg veil-tun veil-tun/tls veil-tun/quic veil-tun/ns veil-proxy veil-proxy/ns"}
src=${VEIL_SRC:-$repo}

[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (network namespaces)" >&2; exit 1; }
declare -A need=([ip]=iproute2 [nft]=nftables [wg]=wireguard-tools [iperf3]=iperf3 [jq]=jq [curl]=curl)
missing=()
for c in "${!need[@]}"; do command -v "$c" >/dev/null || missing+=("${need[$c]}"); done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "${VEIL_BENCH_INSTALL:-}" = 1 ]; then
		apt-get install -y --no-install-recommends "${missing[@]}"
	else
		echo "run.sh: missing ${missing[*]} (apt-get install them, or set VEIL_BENCH_INSTALL=1)" >&2
		exit 1
	fi
fi

id=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
C=vbc$id G=vbg$id I=vbi$id
wpc=wpc$id wpg=wpg$id # wireguard-go interfaces; their UAPI sockets are host-wide
tmp=$(mktemp -d /tmp/veil-bench-tunnel.XXXXXX)
pids=()
client_states=()

cleanup() {
	set +e
	for st in "${client_states[@]}"; do
		ip netns exec "$C" "$tmp/veil" disconnect --state "$st" >/dev/null 2>&1
	done
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	sleep 0.5
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	for ns in "$C" "$G" "$I"; do
		ip netns del "$ns" 2>/dev/null
		rm -rf "/etc/netns/$ns"
	done
	rm -f "/var/run/wireguard/$wpc.sock" "/var/run/wireguard/$wpg.sock"
	if [ "${KEEP_LOGS:-}" = 1 ]; then echo "logs: $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "run.sh: $*" >&2; }
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# bg NS LOGNAME CMD...: a long-lived process in NS; its PID in $bgpid.
bg() {
	local ns=$1 name=$2; shift 2
	ip netns exec "$ns" "$@" >"$tmp/$name.log" 2>&1 &
	bgpid=$!
	pids+=("$bgpid")
}

log "building veil from $src and the bench tools"
(cd "$src" && go build -o "$tmp/veil" ./cmd/veil)
rev=$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git -C "$src" status --porcelain -- cmd internal go.mod go.sum 2>/dev/null)" ] && rev="$rev+changes"
go build -o "$tmp/" ./bench/tunnel/wgplain ./bench/tunnel/socksrelay
veil=$tmp/veil

# --- topology: the addresses of integration/netns ---------------------------
client4=192.0.2.1 gwin4=192.0.2.2 gwout4=198.51.100.1 inet4=198.51.100.2
control=http://$gwin4:8080
for ns in "$C" "$G" "$I"; do
	# `ip netns exec` mounts this over /etc/resolv.conf: the client's DNS
	# setting in tun mode can never touch the host's.
	mkdir -p "/etc/netns/$ns"
	echo "nameserver 192.0.2.53" >"/etc/netns/$ns/resolv.conf"
	ip netns add "$ns"
	ip -n "$ns" link set lo up
done
ip -n "$C" link add c0 type veth peer name g0 netns "$G"
ip -n "$G" link add g1 type veth peer name i0 netns "$I"
ip -n "$C" addr add $client4/24 dev c0 && ip -n "$C" link set c0 up
ip -n "$G" addr add $gwin4/24 dev g0 && ip -n "$G" link set g0 up
ip -n "$G" addr add $gwout4/24 dev g1 && ip -n "$G" link set g1 up
ip -n "$I" addr add $inet4/24 dev i0 && ip -n "$I" link set i0 up
ip -n "$C" route add default via $gwin4
ip -n "$I" route add default via $gwout4
nsx "$G" sysctl -qw net.ipv4.ip_forward=1

bg "$I" iperf3-server iperf3 -s -B $inet4 -p 5201
for _ in $(seq 50); do nsx "$I" bash -c "exec 3<>/dev/tcp/$inet4/5201" 2>/dev/null && break; sleep 0.1; done

# --- measurement --------------------------------------------------------------
ticks() { # PID... -> summed utime+stime of the processes, in clock ticks
	local t=0 p f
	for p in "$@"; do
		f=$(cut -d')' -f2- "/proc/$p/stat" 2>/dev/null) || continue
		t=$((t + $(echo "$f" | awk '{print $12 + $13}')))
	done
	echo "$t"
}
host_busy() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9}' /proc/stat; }
hz=$(getconf CLK_TCK)
results=$tmp/results.tsv
: >"$results"

# measure PATH PROTO ROUND TARGET PORT PIDS...: one iperf3 run from the
# client namespace; appends PATH PROTO ROUND Mbit/s loss% cpu/Gbit host/Gbit.
measure() {
	local path=$1 proto=$2 round=$3 target=$4 port=$5; shift 5
	local args=(-c "$target" -p "$port" -t "$dur" -J) rate=$udp_rate
	if [ "$proto" = udp ]; then
		[ "$rate" = search ] && rate=$(udp_search "$path" "$target" "$port")M
		args+=(-u -b "$rate" -l "$udp_len")
	fi
	local out=$tmp/$(echo "$path" | tr / _)-$proto-$round.json
	local t0 h0 t1 h1
	local perfs=() pp
	if [ "${PERF:-}" = 1 ]; then # a CPU profile of each process of the path
		for pp in "$@"; do
			perf record -q -F 499 -g -p "$pp" -o "${out%.json}-$pp.perf" -- sleep "$dur" >/dev/null 2>&1 &
			perfs+=($!)
		done
	fi
	local each0=() each=() pp0
	for pp0 in "$@"; do each0+=("$(ticks "$pp0")"); done
	t0=$(ticks "$@") h0=$(host_busy)
	if ! nsx "$C" timeout $((dur + 30)) iperf3 "${args[@]}" >"$out" 2>"${out%.json}.err" ||
		! jq -e '.end.sum_received.bytes > 0' "$out" >/dev/null 2>&1; then
		log "$path $proto round $round: iperf3 failed: $(jq -r '.error // empty' "$out" 2>/dev/null || head -c 300 "$out")"
		printf '%s\t%s\t%s\tNA\tNA\tNA\tNA\n' "$path" "$proto" "$round" >>"$results"
		return 0
	fi
	t1=$(ticks "$@") h1=$(host_busy)
	local i=0
	for pp0 in "$@"; do each+=("$(( $(ticks "$pp0") - each0[i] ))"); i=$((i + 1)); done
	for pp in "${perfs[@]}"; do wait "$pp" || true; done
	for pp in "$@"; do
		[ -f "${out%.json}-$pp.perf" ] || continue
		perf report -i "${out%.json}-$pp.perf" --no-children --sort sym --stdio -g none 2>/dev/null |
			grep -E "^ +[0-9]" | head -40 >"${out%.json}-$pp.top" || true
		log "profile of $(tr '\0' ' ' </proc/$pp/cmdline | cut -c1-60): ${out%.json}-$pp.top"
	done
	jq -r --arg path "$path" --arg proto "$proto" --arg round "$round" \
		--argjson cpu "$(( t1 - t0 ))" --argjson host "$(( h1 - h0 ))" --argjson hz "$hz" --argjson npids $# '
		.end.sum_received as $r
		| ($r.bytes * 8 / 1e9) as $gbit
		| [$path, $proto, $round,
		   ($r.bits_per_second / 1e6 | floor),
		   (if $proto == "udp" then ($r.lost_percent * 100 | round) / 100 else "-" end),
		   (if $npids == 0 then "-" else ($cpu / $hz / $gbit * 100 | round) / 100 end),
		   ($host / $hz / $gbit * 100 | round) / 100]
		| @tsv' "$out" >>"$results"
	# Per process (client, then gateway), in ticks: which side costs more.
	tail -1 "$results" | awk -F'\t' -v each="${each[*]}" '{printf "run.sh: %-14s %s round %s: %6s Mbit/s  loss %s%%  cpu %s s/Gbit  host %s s/Gbit  ticks %s\n", $1, $2, $3, $4, $5, $6, $7, each}' >&2
}

# udp_search PATH TARGET PORT: the highest rate, in Mbit/s, that the path
# carries with at most udp_loss per cent loss: bisection on a log scale
# between 10 Mbit/s and udp_max, udp_step_dur seconds per try.
udp_search() {
	local path=$1 target=$2 port=$3 lo=10 hi=$udp_max mid loss i
	local out=$tmp/search.json
	for i in $(seq "$udp_steps"); do
		mid=$(awk -v a="$lo" -v b="$hi" 'BEGIN { printf "%d", sqrt(a * b) }') loss=
		if nsx "$C" timeout $((udp_step_dur + 30)) iperf3 -c "$target" -p "$port" -t "$udp_step_dur" -J \
			-u -b "${mid}M" -l "$udp_len" >"$out" 2>/dev/null &&
			loss=$(jq -e '.end.sum_received.lost_percent' "$out" 2>/dev/null) &&
			awk -v l="$loss" -v m="$udp_loss" 'BEGIN { exit !(l <= m) }'; then
			lo=$mid
		else
			hi=$mid
		fi
		log "$path udp search: ${mid} Mbit/s, loss ${loss:-?}% -> [$lo, $hi]"
	done
	echo "$lo"
}

# --- plain wireguard-go --------------------------------------------------------
wg_up() { # [full|sid]: the client routes everything as wg-quick does,
	# or runs in a session of its own
	local variant=${1:-}; variant=${variant#/}
	umask 077
	nsx "$C" wg genkey >"$tmp/wpc.key"
	nsx "$G" wg genkey >"$tmp/wpg.key"
	local cpub gpub
	cpub=$(nsx "$C" wg pubkey <"$tmp/wpc.key") gpub=$(nsx "$G" wg pubkey <"$tmp/wpg.key")
	bg "$G" wgplain-gw "$tmp/wgplain" "$wpg"; wg_gpid=$bgpid
	local sid=()
	[ "$variant" = sid ] && sid=(setsid) # execs: $bgpid stays the client's PID
	bg "$C" wgplain-client "${sid[@]}" "$tmp/wgplain" "$wpc"; wg_cpid=$bgpid
	for _ in $(seq 100); do
		[ -S "/var/run/wireguard/$wpg.sock" ] && [ -S "/var/run/wireguard/$wpc.sock" ] && break
		sleep 0.05
	done
	nsx "$G" wg set "$wpg" listen-port 51830 private-key "$tmp/wpg.key" peer "$cpub" allowed-ips 10.99.0.2/32
	nsx "$G" ip addr add 10.99.0.1/24 dev "$wpg"
	nsx "$G" ip link set "$wpg" up
	# What Veil's tun gateway does for its pools, without the egress guard.
	nsx "$G" nft -f - <<-EOF
		table inet wgbench {
			chain post { type nat hook postrouting priority srcnat; oifname "g1" ip saddr 10.99.0.0/24 masquerade; }
		}
	EOF
	nsx "$C" wg set "$wpc" private-key "$tmp/wpc.key" peer "$gpub" endpoint $gwin4:51830 allowed-ips 0.0.0.0/0 persistent-keepalive 25
	nsx "$C" ip addr add 10.99.0.2/32 dev "$wpc"
	nsx "$C" ip link set "$wpc" up
	if [ "$variant" = full ]; then
		# wg-quick's full tunnel, as `veil connect --mode tun` sets it up:
		# the WireGuard socket marked, everything else to a table of its
		# own, the main table's default route suppressed, src_valid_mark.
		nsx "$C" wg set "$wpc" fwmark 51820
		nsx "$C" ip route add default dev "$wpc" table 51820
		nsx "$C" ip rule add not fwmark 51820 table 51820 priority 32765
		nsx "$C" ip rule add table main suppress_prefixlength 0 priority 32764
		nsx "$C" sysctl -qw net.ipv4.conf.all.src_valid_mark=1
	else
		# Only the internet host's subnet through the tunnel: the endpoint
		# stays reachable on c0 without wg-quick's policy routing.
		nsx "$C" ip route add $inet4/32 dev "$wpc"
	fi
	# persistent-keepalive starts the handshake at once.
	for _ in $(seq 100); do
		[ "$(nsx "$C" wg show "$wpc" latest-handshakes | awk '{print $2}')" != 0 ] && return 0
		sleep 0.1
	done
	log "plain wireguard-go: no handshake"; return 1
}
# wg_veil_up: the wgplain client alone, configured from `veil wg-config`
# for the Veil tun gateway: which side of veil-tun costs what.
wg_veil_up() {
	bg "$C" wgplain-client "$tmp/wgplain" "$wpc"; wg_cpid=$bgpid
	for _ in $(seq 100); do [ -S "/var/run/wireguard/$wpc.sock" ] && break; sleep 0.05; done
	local conf addr
	conf=$(nsx "$C" "$veil" wg-config --location vgw --state "$tmp/client")
	addr=$(echo "$conf" | sed -n 's/^Address = \([^,]*\),.*/\1/p')
	echo "$conf" | grep -v -e '^Address' -e '^DNS' >"$tmp/wgveil.conf"
	nsx "$C" wg setconf "$wpc" "$tmp/wgveil.conf"
	nsx "$C" ip addr add "$addr" dev "$wpc"
	nsx "$C" ip link set "$wpc" up
	nsx "$C" ip route add $inet4/32 dev "$wpc"
	for _ in $(seq 100); do
		[ "$(nsx "$C" wg show "$wpc" latest-handshakes | awk '{print $2}')" != 0 ] && return 0
		sleep 0.1
	done
	log "wgplain client to the Veil gateway: no handshake"; return 1
}
wg_down() {
	kill "$wg_cpid" "$wg_gpid" 2>/dev/null || true
	wait "$wg_cpid" "$wg_gpid" 2>/dev/null || true
	nsx "$G" nft delete table inet wgbench 2>/dev/null || true
	# Undo wg/full's routing so that every path starts alike.
	nsx "$C" ip rule del priority 32765 2>/dev/null || true
	nsx "$C" ip rule del priority 32764 2>/dev/null || true
	nsx "$C" ip route flush table 51820 2>/dev/null || true
	nsx "$C" sysctl -qw net.ipv4.conf.all.src_valid_mark=0
}

# --- Veil ----------------------------------------------------------------------
veil_gw_pid= serve_pid=
veil_setup() {
	bg "$G" serve "$veil" serve --data "$tmp/serve" --http $gwin4:8080 --admin-http "" \
		--endpoint $gwin4:51820 --location zz-tst --gateway-name builtin \
		--egress-allow 198.51.100.0/24 --log-level warn
	serve_pid=$bgpid
	for _ in $(seq 100); do nsx "$G" curl -fsS -o /dev/null $control/healthz 2>/dev/null && break; sleep 0.1; done
	local token code
	token=$(nsx "$G" "$veil" admin gateway add vgw --location zz-vgw --endpoint $gwin4:51822 \
		--control $control --data "$tmp/serve")
	bg "$G" gateway "$veil" gateway --control $control --token "$token" --mode tun \
		--wg-port 51822 --tun-name vgw0 --egress-allow 198.51.100.0/24 --log-level warn
	veil_gw_pid=$bgpid
	for _ in $(seq 100); do
		[ "$(nsx "$G" curl -fsS $control/api/v1/servers 2>/dev/null |
			jq '[.[] | select(.online and .public_key != "")] | length')" = 2 ] && break
		sleep 0.1
	done
	code=$(nsx "$G" "$veil" admin account create --days 30 --control $control --data "$tmp/serve")
	client_states+=("$tmp/client")
	nsx "$C" "$veil" login "$code" --control $control --state "$tmp/client" >/dev/null
}
veil_up() { # MODE LOCATION [FLAG...] -> $veil_cpid
	local mode=$1 loc=$2; shift 2
	nsx "$C" "$veil" connect --mode "$mode" --location "$loc" --state "$tmp/client" --timeout 15s \
		--socks 127.0.0.1:1080 --http-proxy off "$@" >/dev/null
	veil_cpid=$(nsx "$C" "$veil" status --json --state "$tmp/client" | jq .pid)
}
veil_down() { nsx "$C" "$veil" disconnect --state "$tmp/client" >/dev/null; }

relay_up() {
	bg "$C" socksrelay "$tmp/socksrelay" -listen 127.0.0.1:15201 -socks 127.0.0.1:1080 -to $inet4:5201
	relay_pid=$bgpid
	for _ in $(seq 50); do nsx "$C" bash -c 'exec 3<>/dev/tcp/127.0.0.1/15201' 2>/dev/null && return 0; sleep 0.1; done
	return 1
}
relay_down() { kill "$relay_pid" 2>/dev/null || true; wait "$relay_pid" 2>/dev/null || true; }

# --- the run -------------------------------------------------------------------
case " $paths " in *" veil-"*) veil_setup ;; esac
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
log "namespaces $C $G $I; ${dur}s per run, $rounds rounds; load average $load_start"
# Each round starts one path further along the list, so that no path
# always runs first: the machine's speed drifts over a run (other load,
# the host's own state), and a fixed order would charge the drift to the
# paths that come late.
order() { # ROUND -> the paths, rotated by ROUND-1
	local -a ps=($paths)
	local k=$((($1 - 1) % ${#ps[@]}))
	echo "${ps[@]:k}" "${ps[@]:0:k}"
}
for r in $(seq "$rounds"); do
	for p in $(order "$r"); do
		case $p in
		veth)
			measure veth tcp "$r" $inet4 5201
			measure veth udp "$r" $inet4 5201 ;;
		wg | wg/full | wg/sid)
			wg_up "${p#wg}"
			measure "$p" tcp "$r" $inet4 5201 "$wg_cpid" "$wg_gpid"
			measure "$p" udp "$r" $inet4 5201 "$wg_cpid" "$wg_gpid"
			wg_down ;;
		wg/veil-gw)
			wg_veil_up
			measure "$p" tcp "$r" $inet4 5201 "$wg_cpid" "$veil_gw_pid"
			measure "$p" udp "$r" $inet4 5201 "$wg_cpid" "$veil_gw_pid"
			kill "$wg_cpid" 2>/dev/null || true; wait "$wg_cpid" 2>/dev/null || true ;;
		veil-tun | veil-tun/ns | veil-tun/noks | veil-tun/tls | veil-tun/quic)
			gw=$veil_gw_pid loc=vgw flags=(--transport udp)
			[ "$p" = veil-tun/ns ] && gw=$serve_pid loc=builtin
			[ "$p" = veil-tun/noks ] && flags+=(--kill-switch=false)
			[ "$p" = veil-tun/tls ] && flags=(--transport tls)
			[ "$p" = veil-tun/quic ] && flags=(--transport quic)
			veil_up tun "$loc" "${flags[@]}"
			measure "$p" tcp "$r" $inet4 5201 "$veil_cpid" "$gw"
			measure "$p" udp "$r" $inet4 5201 "$veil_cpid" "$gw"
			veil_down ;;
		veil-proxy | veil-proxy/ns)
			gw=$veil_gw_pid loc=vgw
			[ "$p" = veil-proxy/ns ] && gw=$serve_pid loc=builtin
			veil_up proxy "$loc"
			relay_up
			# The relay stands in for the application: not counted.
			measure "$p" tcp "$r" 127.0.0.1 15201 "$veil_cpid" "$gw"
			measure "$p" udp "$r" 127.0.0.1 15201 "$veil_cpid" "$gw"
			relay_down
			veil_down ;;
		*) log "unknown path $p"; exit 1 ;;
		esac
	done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ----------------------------------------------------------------------
median() { sort -g | awk '{v[NR]=$1} END {if (NR == 0) print "NA"; else print v[int((NR+1)/2)]}'; }
col() { # PATH PROTO COLUMN -> median of that column over rounds (NA skipped)
	awk -F'\t' -v p="$1" -v q="$2" -v c="$3" '$1==p && $2==q && $c!="NA" {print $c}' "$results" | median
}
runs() { awk -F'\t' -v p="$1" -v q="$2" '$1==p && $2==q {printf "%s%s", sep, $4; sep=", "}' "$results"; }
paired() { # A B PROTO -> median over rounds of A / B, each pair from one round
	awk -F'\t' -v a="$1" -v b="$2" -v q="$3" '$2==q && $4!="NA" { if ($1==a) x[$3]=$4; if ($1==b) y[$3]=$4 }
		END { for (r in x) if ((r in y) && y[r] > 0) printf "%.0f\n", 100 * x[r] / y[r] }' "$results" | median
}
echo
echo "veil $rev ($(go version | cut -d' ' -f3)); iperf3 ${dur}s, one stream; UDP $( [ "$udp_rate" = search ] && echo "at the highest rate with <= ${udp_loss}% loss" || echo "-b $udp_rate") -l $udp_len; median of $rounds rounds; $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')); load average $load_start at start, $load_end at end; $(uname -r)"
echo
echo "| Path | Proto | Mbit/s (median) | runs | UDP loss % | tunnel CPU s/Gbit | host CPU s/Gbit |"
echo "|---|---|---:|---|---:|---:|---:|"
for p in $paths; do
	for q in tcp udp; do
		echo "| $p | $q | $(col "$p" $q 4) | $(runs "$p" $q) | $(col "$p" $q 5) | $(col "$p" $q 6) | $(col "$p" $q 7) |"
	done
done
echo
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "NA" || b == "NA" || b == 0) print "NA"; else printf "%.0f%%", 100 * a / b }'; }
has() { case " $paths " in *" $1 "*) return 0 ;; esac; return 1; }
for q in tcp udp; do
	has wg && has veil-tun && echo "- veil-tun / wg, $q: $(ratio "$(col veil-tun $q 4)" "$(col wg $q 4)") of the medians; $(paired veil-tun wg $q)% the median of the rounds' ratios (target >= 95%)"
done
for q in tcp udp; do
	for tr in tls quic; do
		has veil-tun && has veil-tun/$tr && echo "- veil-tun/$tr / veil-tun (plain UDP), $q: $(ratio "$(col veil-tun/$tr $q 4)" "$(col veil-tun $q 4)")"
	done
done
for q in tcp udp; do
	has veil-tun && has veil-proxy && echo "- veil-proxy / veil-tun, $q: $(ratio "$(col veil-proxy $q 4)" "$(col veil-tun $q 4)") (target >= 50%)"
	has veil-tun/ns && has veil-proxy/ns && echo "- veil-proxy/ns / veil-tun/ns, $q: $(ratio "$(col veil-proxy/ns $q 4)" "$(col veil-tun/ns $q 4)")"
done
echo
echo "tunnel CPU: utime+stime of the client and gateway processes of the path (none for veth; the SOCKS relay not counted). host CPU: all CPUs from /proc/stat, including iperf3, the kernel and other load."
