#!/usr/bin/env bash
# rotate.sh - runs the fuzz targets one at a time, nice 19, each for SLICE
# seconds, round after round, until UNTIL (a time `date -d` reads), on a
# machine shared with other work. Each target grows its own corpus in
# OUT/corpus/X (the committed seeds are read, never written); findings go to
# OUT/artifacts/X-crash-*; every run appends a line to OUT/summary.txt with its
# wall and CPU seconds (GNU time) and libFuzzer's execution count.
#
#   make fuzz && cp build-fuzz/fuzz_* /var/tmp/fuzzbin/     # a copy: rebuilding must not touch running binaries
#   SLICE=300 UNTIL=13:05 OUT=/var/tmp/fuzzrun BIN=/var/tmp/fuzzbin nohup fuzz/rotate.sh &
#   awk '...' OUT/summary.txt                                 # sums: see "Time run without a finding" in README.md
#
# nice alone does not keep the fuzzer out of other work's way where the kernel
# groups processes by session (sched_autogroup_enabled = 1: a session's group
# gets its share whatever its nice values), so the script runs in a session of
# its own and lowers that group too. A run that libFuzzer ends early (a
# timeout: -timeout counts wall time, and a starved process can pass it) is
# started again for what is left of its slice.
set -u
if [ "$(ps -o sid= $$ | tr -d ' ')" != "$$" ] && command -v setsid >/dev/null; then
    exec setsid -w "$0" "$@" # -w: waits when setsid has to fork
fi
echo 19 >/proc/self/autogroup 2>/dev/null || true
src=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-/var/tmp/sd-fuzz}
bin=${BIN:-$src/build-fuzz}
slice=${SLICE:-300}
end=$(date -d "${UNTIL:-now + 1 hour}" +%s)
targets=${TARGETS:-"engine pcap policy pkt tls quic http dns names ipset serve_req hello_fields invert pcapfile proxy_req http_servers match"}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
mkdir -p "$out/logs" "$out/artifacts"

round=0
while :; do
    round=$((round + 1))
    for t in $targets; do
        left=$((end - $(date +%s)))
        [ $left -lt 30 ] && exit 0
        s=$slice
        [ $left -lt $s ] && s=$left
        mkdir -p "$out/corpus/$t" "$out/work/$t"
        dict=()
        [ -f "$src/fuzz/$t.dict" ] && dict=(-dict="$src/fuzz/$t.dict")
        stop=$(($(date +%s) + s))
        part=0
        while [ $((stop - $(date +%s))) -ge 30 ]; do
            part=$((part + 1))
            log=$out/logs/$t.r$round.$part.log
            # fuzz_policy reads files named in its input: an empty working directory.
            (cd "$out/work/$t" && /usr/bin/time -f "TIME wall=%e user=%U sys=%S" nice -n 19 "$bin/fuzz_$t" \
                -max_total_time=$((stop - $(date +%s))) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
                "${dict[@]}" -artifact_prefix="$out/artifacts/$t-" "$out/corpus/$t" "$src/fuzz/corpus/$t") >"$log" 2>&1
            rc=$?
            execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
            echo "$(date -u +%H:%M:%S) round=$round target=$t part=$part rc=$rc slice=$s execs=$execs $(grep '^TIME' "$log")" \
                >>"$out/summary.txt"
            # A crash stops the slice (its input is saved; running on would find it again).
            grep -q "^==[0-9]*==ERROR\|^SUMMARY: .*Sanitizer\|deadly signal" "$log" && break
        done
    done
done
