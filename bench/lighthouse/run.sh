#!/bin/sh
# Lighthouse's accessibility and best-practices scores for the site's main
# pages, against a `veil serve` this script starts on loopback with a data
# directory of its own, with Debian's chromium. Lighthouse comes from the
# npm registry, pinned (12.2.3 is the newest that runs on Debian's Node 20;
# 13 wants Node 22), installed into a temporary directory. Prints a
# Markdown table for BENCHMARKS.md. Not part of `make test`.
#
#   bench/lighthouse/run.sh            # LIGHTHOUSE=12.2.3 CHROME_PATH=/usr/bin/chromium
set -eu
cd "$(dirname "$0")/../.."

LIGHTHOUSE=${LIGHTHOUSE:-12.2.3}
CHROME_PATH=${CHROME_PATH:-/usr/bin/chromium}
export CHROME_PATH
PAGES=${PAGES:-"/ /vpn /servers /pricing /help /privacy /de/vpn /zh/vpn"}

for cmd in npm node jq; do
	command -v "$cmd" >/dev/null 2>&1 || { echo "run.sh: $cmd is needed (apt-get install nodejs npm jq)" >&2; exit 1; }
done
[ -x "$CHROME_PATH" ] || { echo "run.sh: no browser at $CHROME_PATH (apt-get install chromium)" >&2; exit 1; }

work=$(mktemp -d /tmp/veil-lighthouse.XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

lh=${LIGHTHOUSE_DIR:-/tmp/veil-lighthouse-$LIGHTHOUSE}
if [ ! -x "$lh/node_modules/.bin/lighthouse" ]; then
	echo "run.sh: installing lighthouse@$LIGHTHOUSE into $lh" >&2
	npm install --silent --prefix "$lh" -E "lighthouse@$LIGHTHOUSE" >&2
fi

go build -o "$work/veil" ./cmd/veil
# No operator listener: its default port may be taken on a shared machine.
echo 'admin_http = ""' >"$work/veil.toml"
"$work/veil" serve --config "$work/veil.toml" --data "$work/data" --http 127.0.0.1:0 --wg-port 0 >"$work/serve.log" 2>&1 &
pid=$!
# The port is the system's choice (a fixed one may be another's on a
# shared machine): the serve's log says which.
base=
i=0
until [ -n "$base" ] && curl -fsS -o /dev/null "$base/vpn" 2>/dev/null; do
	base=$(sed -n 's/.*msg=serving url=\(http:[^ ]*\).*/\1/p' "$work/serve.log" | head -1)
	i=$((i + 1))
	if [ $i -gt 120 ] || ! kill -0 "$pid" 2>/dev/null; then
		echo "run.sh: veil serve did not come up; its log:" >&2
		cat "$work/serve.log" >&2
		exit 1
	fi
	sleep 0.5
done

echo "Lighthouse $LIGHTHOUSE ($("$CHROME_PATH" --version 2>/dev/null), desktop preset), \`bench/lighthouse/run.sh\`:"
echo
echo "| page | accessibility | best practices | audits below 1 |"
echo "|---|---:|---:|---|"
for p in $PAGES; do
	out=$work/report.json
	if ! "$lh/node_modules/.bin/lighthouse" "$base$p" --quiet --preset=desktop \
		--only-categories=accessibility,best-practices --output=json --output-path="$out" \
		--chrome-flags="--headless=new --no-sandbox --disable-gpu" >"$work/lh.log" 2>&1; then
		echo "| $p | failed: $(tail -1 "$work/lh.log") | | |"
		continue
	fi
	jq -r --arg p "$p" '
		def pct: if . == null then "n/a" else (. * 100 | round | tostring) end;
		[.categories[] | .auditRefs[] | select(.weight > 0) | .id] as $ids
		| [.audits[] | select(.id as $i | $ids | index($i)) | select(.score != null and .score < 1) | .id] as $low
		| ([.audits["errors-in-console"].details.items[]? | .sourceLocation.url // .description] | unique) as $errs
		| "| \($p) | \(.categories.accessibility.score | pct) | \(.categories["best-practices"].score | pct) | \($low | join(", "))\(if ($errs | length) > 0 then " (" + ($errs | join(", ")) + ")" else "" end) |"' "$out"
done
