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
	# A port nothing answers on (bash's /dev/tcp: no other tool needed).
	for _ in $(seq 50); do
		port=$((20000 + RANDOM % 40000))
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
	done
	run "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
		-o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=300" start >/dev/null ||
		{ cat "$dir/server.log" >&2; exit 1; }
	echo "postgres://veil@127.0.0.1:$port/postgres?sslmode=disable"
	;;
stop)
	[ -d "$dir/data" ] && run "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
	rm -rf "$dir"
	;;
esac
