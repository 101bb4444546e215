#!/usr/bin/env bash
# Installs the Debian 12 packages slowdown needs to build, test and run its lab,
# when any is missing. Safe to run again. Needs root (or sudo) when something
# is missing.
set -euo pipefail

PKGS=(build-essential cmake pkg-config
      libpcap-dev libnetfilter-queue-dev libmnl-dev libssl-dev libcmocka-dev libcurl4-openssl-dev libcap-ng-dev libbpf-dev curl
      openssl iproute2 iptables ipset bpftool tcpdump iperf3 procps kmod
      clang-14 libclang-rt-14-dev libndpi-bin
      valgrind cppcheck clang-tidy-14
      python3)  # tests/support/split_client.py: an outside client for the external adapter test

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
