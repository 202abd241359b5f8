#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: initdb in a temporary
# directory, a free port on loopback, a unix socket in the same directory.
#   pgtmp.sh start DIR   prints the connection URL on stdout
#   pgtmp.sh stop DIR
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?directory}

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bindir" ] || { echo "pgtmp: PostgreSQL is not installed" >&2; exit 1; }
# PostgreSQL refuses to run as root; run it as nobody-owned files when root.
run() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case $cmd in
start)
	mkdir -p "$dir"
	[ "$(id -u)" = 0 ] && chown postgres "$dir"
	run "$bindir/initdb" -D "$dir/data" -U veil --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; exit 1; }
	# A free port on loopback, below the kernel's ephemeral range (32768 and
	# up by default) so that no outgoing connection holds it; nothing may
	# answer on it (bash's /dev/tcp: no other tool needed). A port taken
	# between the probe and the server's bind is tried again with another.
	for try in 1 2 3 4 5; do
		for _ in $(seq 50); do
			port=$((20000 + RANDOM % 12000))
			(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
		done
		rm -f "$dir/server.log"
		if run "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
			-o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=300" start >/dev/null; then
			break
		fi
		if [ "$try" = 5 ] || ! grep -q 'Address already in use' "$dir/server.log" 2>/dev/null; then
			cat "$dir/server.log" >&2
			exit 1
		fi
	done
	echo "postgres://veil@127.0.0.1:$port/postgres?sslmode=disable"
	;;
stop)
	[ -d "$dir/data" ] && run "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
	rm -rf "$dir"
	;;
esac
