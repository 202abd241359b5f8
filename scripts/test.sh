#!/usr/bin/env bash
# Runs the whole suite. Sets the variables that turn on the deeper tests:
#   VEIL_TEST_POSTGRES  URL of a throwaway PostgreSQL (store conformance)
#   VEIL_TEST_POSTGRES_DATA  its data directory (erasure tests)
#   VEIL_TEST_NETNS=1   network-namespace tests (root only)
#   VEIL_TEST_CHROMIUM  path of a headless Chromium (browser tests)
#   VEIL_TEST_ARTIFACTS where the browser tests keep their screenshots
#                       (./test-artifacts, ignored by git)
# Under CI=true, a PostgreSQL that cannot start fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

pgdir=$(mktemp -d /tmp/veil-pg.XXXXXX)
trap './scripts/pgtmp.sh stop "$pgdir"' EXIT
if url=$(./scripts/pgtmp.sh start "$pgdir"); then
	export VEIL_TEST_POSTGRES=$url
	# The erasure tests look for erased values in the cluster's files.
	export VEIL_TEST_POSTGRES_DATA=$pgdir/data
else
	echo "test: PostgreSQL could not start" >&2
	[ "${CI:-}" = true ] && exit 1
fi
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null; then
	export VEIL_TEST_NETNS=1
fi
if command -v chromium >/dev/null; then
	export VEIL_TEST_CHROMIUM=$(command -v chromium)
fi
export VEIL_TEST_ARTIFACTS=${VEIL_TEST_ARTIFACTS:-$PWD/test-artifacts}
mkdir -p "$VEIL_TEST_ARTIFACTS"

go vet ./...
set +e
go test -count=1 -timeout 45m ./...
status=$?
set -e
exit "$status"
