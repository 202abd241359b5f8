#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, only those missing.
# Needs root (CI runs as root); without it, says what is missing and goes on
# so that the tests needing them skip with their own message.
set -euo pipefail

# command -> package
declare -A need=(
	[pg_ctlcluster]=postgresql
	[chromium]=chromium
	[ip]=iproute2
	[nft]=nftables
	[wg]=wireguard-tools
	[wireguard-go]=wireguard-go
	[iperf3]=iperf3
	[dig]=dnsutils
	[kdig]=knot-dnsutils
	[tcpdump]=tcpdump
	[curl]=curl
	[promtool]=prometheus
	[dnsmasq]=dnsmasq-base
	[dhcpcd]=dhcpcd-base
)
missing=()
for cmd in "${!need[@]}"; do
	command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
# initdb lives outside PATH in Debian's postgresql packages.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
# Chromium draws the Chinese pages' screenshots with a CJK font, or boxes.
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)

[ ${#missing[@]} -eq 0 ] && exit 0
pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
if [ "$(id -u)" != 0 ]; then
	echo "test-deps: not root; missing packages: $pkgs (tests that need them will skip)" >&2
	exit 0
fi
echo "test-deps: installing $pkgs"
export DEBIAN_FRONTEND=noninteractive
# The packages are tools for the tests, not services: keep apt from
# starting the daemons some of them ship (PostgreSQL's main cluster,
# Prometheus on :9090), unless the machine already has a policy of its own.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
