#!/usr/bin/env bash
# detect_fp.sh - false positives of `slowdown detect`, counted in the lab (root).
#
#   bench/detect_fp.sh [BUILD_DIR] [RUNS] [NAME...]
#
# Runs the detector RUNS times (default 20) with default options on each
# NAME (default twitter.com and example.org), on each of two paths where
# nothing throttles or blocks a name:
#   clean   the lab without a censor (a plain router);
#   htb1m   the lab without a censor, both directions shaped to 1 Mbit/s by an
#           HTB qdisc (the Tele2 upload shaper of spec B8: every flow alike);
# and, as the positive control, TW21_RUNS (default 10) runs against
# tw21-exact (the 2021 policer, 128 kbit/s), where twitter.com must be
# throttled and example.org not. A run is one `slowdown detect` process on
# one name: both directions at once, its wall time measured from outside.
# A false positive is any verdict but not_throttled on clean or htb1m (or
# on example.org under tw21-exact); a miss is twitter.com not throttled
# under tw21-exact. Prints one line per run, then per path and name:
#
#   path  name  runs  measurements  not_throttled  inconclusive  throttled  blocked  wrong
#
# the wall time per run (median and max), and the rate estimates under
# tw21-exact per direction with their error against 128 kbit/s. Exit status
# 1 when a verdict was wrong or a run took more than 20 s.
#
# The machine's cores are shared by client, censor and server (and anyone
# else): note the load average printed at the end.
set -u
B=${1:-build}
N=${2:-20}
shift 2 2>/dev/null
NAMES=("$@")
[ ${#NAMES[@]} -gt 0 ] || NAMES=(twitter.com example.org)
TW21_RUNS=${TW21_RUNS:-10}
SD=$(realpath "$B/slowdown")
[ "$(id -u)" = 0 ] || { echo "detect_fp: needs root" >&2; exit 77; }
[ -x "$SD" ] || { echo "detect_fp: build $B first" >&2; exit 1; }

id=fp$$
trap '"$SD" lab down "$id" >/dev/null 2>&1' EXIT
declare -A COUNT RUNS RATES
TIMES=()
PATHS=()
str() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
num() { sed -n "s/.*\"$1\":\([-0-9.e+]*\).*/\1/p"; }
t_start=$(date +%s)

# The verdict expected for NAME on PATH.
expected() {
    if [ "$1" = tw21 ] && [ "$2" = twitter.com ]; then echo throttled; else echo not_throttled; fi
}

run_path() {
    local path=$1 runs=$2
    shift 2
    "$SD" lab up --name "$id" --quiet "$@" >/dev/null || { echo "detect_fp: lab up $*" >&2; exit 1; }
    PATHS+=("$path")
    for name in "${NAMES[@]}"; do
        RUNS[$path,$name]=$runs
        for v in not_throttled inconclusive throttled blocked wrong; do COUNT[$path,$name,$v]=0; done
    done
    for i in $(seq 1 "$runs"); do
        for name in "${NAMES[@]}"; do
            local t0 t1 out secs line verdicts="" want
            want=$(expected "$path" "$name")
            t0=$(date +%s.%N)
            out=$("$SD" detect --lab "$id" --json "$name")
            t1=$(date +%s.%N)
            secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
            TIMES+=("$secs")
            while IFS= read -r line; do
                local v k r dir
                v=$(echo "$line" | str verdict)
                k=$(echo "$line" | str kind)
                dir=$(echo "$line" | str direction)
                r=$(echo "$line" | num rate_estimate_kbps)
                [ -n "$v" ] || v=inconclusive
                COUNT[$path,$name,$v]=$((COUNT[$path,$name,$v] + 1))
                [ "$v" = "$want" ] || COUNT[$path,$name,wrong]=$((COUNT[$path,$name,wrong] + 1))
                [ -n "$r" ] && RATES[$path,$dir]+=" $r"
                verdicts+=" $dir=$v${k:+($k${r:+, ~$r kbit/s})}"
                [ "$v" = "$want" ] || verdicts+=" [WRONG]"
            done < <(echo "$out" | grep '"type":"measurement"')
            # Both directions, or the run counts as wrong.
            if [ "$(echo "$out" | grep -c '"type":"measurement"')" != 2 ]; then
                COUNT[$path,$name,wrong]=$((COUNT[$path,$name,wrong] + 1))
                verdicts+=" (not two measurements) [WRONG]"
            fi
            echo "$path run $i $name ($secs s):$verdicts"
            # The wrong runs' evidence, for whoever reads the log.
            echo "$out" | grep '"type":"measurement"' | grep -v "\"verdict\":\"$want\"" |
                sed -n 's/.*"direction":"\([a-z]*\)".*"evidence":\(".*"\)}$/    \1 evidence: \2/p'
        done
    done
    "$SD" lab down "$id" >/dev/null
}

run_path clean "$N" --no-censor
run_path htb1m "$N" --no-censor --shape-kbit 1000
run_path tw21 "$TW21_RUNS" --preset tw21-exact

printf '\n%-6s %-12s %5s %13s %14s %13s %10s %8s %6s\n' path name runs measurements not_throttled inconclusive \
    throttled blocked wrong
wrong_total=0
fp_total=0
for path in "${PATHS[@]}"; do
    for name in "${NAMES[@]}"; do
        nt=${COUNT[$path,$name,not_throttled]} in=${COUNT[$path,$name,inconclusive]}
        th=${COUNT[$path,$name,throttled]} bl=${COUNT[$path,$name,blocked]} wr=${COUNT[$path,$name,wrong]}
        wrong_total=$((wrong_total + wr))
        [ "$path" != tw21 ] && fp_total=$((fp_total + wr))
        printf '%-6s %-12s %5s %13s %14s %13s %10s %8s %6s\n' "$path" "$name" "${RUNS[$path,$name]}" \
            $((nt + in + th + bl)) "$nt" "$in" "$th" "$bl" "$wr"
    done
done
echo "false positives (not not_throttled) on clean and htb1m: $fp_total; wrong verdicts in all: $wrong_total"
slow=$(printf '%s\n' "${TIMES[@]}" | awk '$1 > 20' | wc -l)
echo "wall time per run: $(printf '%s\n' "${TIMES[@]}" | sort -n | awk '{ v[NR] = $1 } END {
    printf "median %.2f s, max %.2f s over %d runs", (v[int((NR + 1) / 2)] + v[int(NR / 2) + 1]) / 2, v[NR], NR }'), over 20 s: $slow"
for dir in down up; do
    [ -n "${RATES[tw21,$dir]:-}" ] || continue
    echo "tw21-exact $dir rate estimates (128 kbit/s): $(echo ${RATES[tw21,$dir]} | tr ' ' '\n' | sort -n | awk '
        { v[NR] = $1; e = ($1 - 128) / 128 * 100; if (e < 0) e = -e; if (e > m) m = e }
        END { printf "min/median/max %.1f / %.1f / %.1f kbit/s over %d, error of the median %+.1f%%, largest error %.1f%%",
              v[1], (v[int((NR + 1) / 2)] + v[int(NR / 2) + 1]) / 2, v[NR], NR,
              ((v[int((NR + 1) / 2)] + v[int(NR / 2) + 1]) / 2 - 128) / 128 * 100, m }')"
done
echo "elapsed $(( $(date +%s) - t_start )) s; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$wrong_total" = 0 ] && [ "$slow" = 0 ]
