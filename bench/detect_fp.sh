#!/usr/bin/env bash
# detect_fp.sh - false positives of `slowdown detect`, counted in the lab (root).
#
#   bench/detect_fp.sh [BUILD_DIR] [RUNS] [NAME...]
#
# Runs the detector RUNS times (default 20) with default options on each of
# two paths where nothing throttles or blocks a name:
#   clean   the lab without a censor (a plain router);
#   htb1m   the lab without a censor, both directions shaped to 1 Mbit/s by an
#           HTB qdisc (the Tele2 upload shaper of spec B8: every flow alike);
# and, as the positive control, a few runs against tw21-exact (the 2021
# policer). Every run measures both directions of each NAME (default
# twitter.com). A false positive is a `throttled` or `blocked` verdict on
# clean or htb1m. Prints one line per run and a table:
#
#   path    runs  measurements  not_throttled  inconclusive  throttled  blocked  FP  max_s
#
# The machine's cores are shared by client, censor and server (and anyone
# else); a run's wall time is in the last column.
set -u
B=${1:-build}
N=${2:-20}
shift 2 2>/dev/null
NAMES=("$@")
[ ${#NAMES[@]} -gt 0 ] || NAMES=(twitter.com)
SD=$(realpath "$B/slowdown")
[ "$(id -u)" = 0 ] || { echo "detect_fp: needs root" >&2; exit 77; }
[ -x "$SD" ] || { echo "detect_fp: build $B first" >&2; exit 1; }

id=fp$$
trap '"$SD" lab down "$id" >/dev/null 2>&1' EXIT
declare -A COUNT MAXS RUNS RATES
str() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }

run_path() {
    local path=$1 runs=$2
    shift 2
    "$SD" lab up --name "$id" --quiet "$@" >/dev/null || { echo "detect_fp: lab up $*" >&2; exit 1; }
    RUNS[$path]=$runs
    MAXS[$path]=0
    for v in not_throttled inconclusive throttled blocked; do COUNT[$path,$v]=0; done
    for i in $(seq 1 "$runs"); do
        local t0 t1 out
        t0=$(date +%s.%N)
        out=$("$SD" detect --lab "$id" --json "${NAMES[@]}")
        t1=$(date +%s.%N)
        local secs
        secs=$(awk -v a="$t0" -v b="$t1" -v n=${#NAMES[@]} 'BEGIN { printf "%.1f", (b - a) / n }')
        MAXS[$path]=$(awk -v a="${MAXS[$path]}" -v b="$secs" 'BEGIN { print (b > a ? b : a) }')
        local line verdicts=""
        while IFS= read -r line; do
            local v k
            v=$(echo "$line" | str verdict)
            k=$(echo "$line" | str kind)
            r=$(echo "$line" | sed -n 's/.*"rate_estimate_kbps":\([0-9.]*\).*/\1/p')
            COUNT[$path,$v]=$((COUNT[$path,$v] + 1))
            [ -n "$r" ] && RATES[$path]+=" $r"
            verdicts+=" $(echo "$line" | str name)/$(echo "$line" | str direction)=$v${k:+($k${r:+, ~$r kbit/s})}"
        done < <(echo "$out" | grep '"type":"measurement"')
        echo "$path run $i (${secs} s per name):$verdicts"
    done
    "$SD" lab down "$id" >/dev/null
}

run_path clean "$N" --no-censor
run_path htb1m "$N" --no-censor --shape-kbit 1000
run_path tw21 "$(( N < 5 ? N : 5 ))" --preset tw21-exact

printf '\n%-6s %5s %13s %14s %13s %10s %8s %4s %6s\n' path runs measurements not_throttled inconclusive throttled \
    blocked FP max_s
fp_total=0
for path in clean htb1m tw21; do
    nt=${COUNT[$path,not_throttled]} in=${COUNT[$path,inconclusive]}
    th=${COUNT[$path,throttled]} bl=${COUNT[$path,blocked]}
    fp=$((th + bl))
    [ "$path" = tw21 ] && fp=-
    [ "$path" != tw21 ] && fp_total=$((fp_total + th + bl))
    printf '%-6s %5s %13s %14s %13s %10s %8s %4s %6s\n' "$path" "${RUNS[$path]}" $((nt + in + th + bl)) "$nt" "$in" \
        "$th" "$bl" "$fp" "${MAXS[$path]}"
done
echo "false positives on clean and htb1m: $fp_total"
[ -n "${RATES[tw21]:-}" ] && echo "tw21-exact (128 kbit/s) rate estimates: min/median/max $(echo ${RATES[tw21]} | tr ' ' '\n' |
    sort -n | awk '{ v[NR] = $1 } END { printf "%.1f / %.1f / %.1f kbit/s over %d", v[1], v[int((NR + 1) / 2)], v[NR], NR }')"
