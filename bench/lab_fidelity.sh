#!/usr/bin/env bash
# lab_fidelity.sh - goodput of a throttled real TLS download against the
# crowd data of 2021 (spec B8: 11,038 throttled measurements from Russian
# networks, median goodput 108.9 kbit/s, p5 80.2, p95 125.2).
#
#   bench/lab_fidelity.sh [BUILD_DIR] [RUNS] [SECONDS] [RTTS]
#
# For each RTT (ms; default "0 20 50 100"), one lab with preset tw21-exact
# and that delay line; RUNS downloads of SECONDS (default 5 x 15 s) with the
# SNI twitter.com, goodput counted over the whole transfer (as the browser test
# page of DS21 counted it: the image's bytes over its download time). Prints
# per RTT the runs' median, min and max, and whether the median falls in the
# band 95-125 kbit/s the issue asks for and the runs inside p5-p95 (80-125).
set -u
B=${1:-build}
RUNS=${2:-5}
S=${3:-15}
RTTS=${4:-"0 20 50 100"}
SD=$(realpath "$B/slowdown")
[ "$(id -u)" = 0 ] || { echo "lab_fidelity: needs root" >&2; exit 77; }
id=fid$$
trap '"$SD" lab down "$id" >/dev/null 2>&1' EXIT
printf '%-8s %-8s %-8s %-8s %-8s %-14s %s\n' rtt_ms median min max in_p5p95 median_95-125 runs
for rtt in $RTTS; do
  "$SD" lab down "$id" >/dev/null 2>&1
  args=(--name "$id" --preset tw21-exact --quiet)
  [ "$rtt" != 0 ] && args+=(--rtt "$rtt")
  "$SD" lab up "${args[@]}" >/dev/null || { echo "lab up failed"; exit 1; }
  vals=()
  for _ in $(seq "$RUNS"); do
    k=$("$SD" lab exec "$id" client -- "$SD" lab fetch --sni twitter.com --seconds "$S" --skip 0 203.0.113.2 |
        sed -n 's/.*"kbps":\([0-9.]*\).*/\1/p')
    vals+=("${k:-0}")
  done
  printf '%s\n' "${vals[@]}" | sort -g | awk -v rtt="$rtt" -v runs="$(echo "${vals[*]}")" '
    { v[NR] = $1 } END {
      n = NR; med = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
      inb = 0; for (i = 1; i <= n; i++) if (v[i] >= 80 && v[i] <= 125.2) inb++
      printf "%-8s %-8.1f %-8.1f %-8.1f %d/%-6d %-14s %s\n", rtt, med, v[1], v[n], inb, n,
             (med >= 95 && med <= 125) ? "yes" : "NO", runs }'
done
