#!/bin/bash
# bench/ab_names.sh - two (or more) bench_names binaries in alternating runs.
#
#   bench/ab_names.sh RUNS BIN_A BIN_B [BIN...]
#
# This host's speed drifts over minutes, so one run of each binary can differ
# by 30% with no change in the code. The binaries run in turn, RUNS rounds,
# each on the sets in SD_BENCH_NAMES_SETS (default synth-mix); for each
# binary and set the lowest and median of the p50 and p50_miss columns are
# printed. Compare binaries only within one invocation.
set -u -o pipefail

[ $# -ge 3 ] || { echo "usage: $0 RUNS BIN_A BIN_B [BIN...]" >&2; exit 2; }
RUNS=$1
shift
SETS=${SD_BENCH_NAMES_SETS:-synth-mix}
for b in "$@"; do
    [ -x "$b" ] || { echo "$0: $b: not an executable" >&2; exit 2; }
done
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

for _ in $(seq "$RUNS"); do
    i=0
    for b in "$@"; do
        # The table's rows: set, patterns, build_ms, ms/1M, mem_MB, p50_ns, p99_ns, p50_wall, p50_miss, ...
        SD_BENCH_NAMES_SETS=$SETS "$b" | awk -v d="$TMP" -v i="$i" \
            'NR > 1 && NF >= 9 && $2 ~ /^[0-9]+$/ { print $6 >> (d "/" i "-" $1 ".p50"); print $9 >> (d "/" i "-" $1 ".miss") }'
        i=$((i + 1))
    done
done

lowmed() { sort -n "$1" | awk '{ v[NR] = $1 } END { printf "lowest %.0f median %.0f", v[1], v[int((NR + 1) / 2)] }'; }
i=0
for b in "$@"; do
    for f in "$TMP/$i"-*.p50; do
        [ -e "$f" ] || continue
        set_name=${f##*/"$i"-}
        set_name=${set_name%.p50}
        printf '%-40s %-12s p50 (ns): %s   names matching nothing: %s\n' "$b" "$set_name" "$(lowmed "$f")" \
            "$(lowmed "${f%.p50}.miss")"
    done
    i=$((i + 1))
done
