#!/bin/sh
# Installs the Debian 12 packages sip_exporter needs: the build dependencies, and with --test the
# real peers the test suite drives (SIPp, tshark, Prometheus/promtool, tcpreplay). Installs only
# what is missing; uses sudo when not run as root.
set -eu

pkgs="build-essential cmake pkg-config python3 libpcap-dev prometheus-cpp-dev libcivetweb-dev zlib1g-dev
      libconcurrentqueue-dev libcli11-dev libyaml-cpp-dev libsystemd-dev libcrypt-dev libgtest-dev libbenchmark-dev"
if [ "${1:-}" = "--test" ]; then
  pkgs="$pkgs valgrind sip-tester tshark prometheus tcpreplay iproute2 dpkg-dev file systemd stunnel4 openssl clang libclang-rt-14-dev"
elif [ -n "${1:-}" ]; then
  echo "usage: $0 [--test]" >&2
  exit 2
fi

missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing:$missing" >&2
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
# shellcheck disable=SC2086
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
