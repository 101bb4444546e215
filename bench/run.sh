#!/bin/bash
# bench/run.sh - the benchmark runner: every figure of issue 8 against its
# baseline, measured in one run, printed as one table.
#
#   bench/run.sh [BUILD_DIR]        (default: build; 'make bench' passes it)
#
# It builds nothing: BUILD_DIR must hold slowdown, bench_mixgen, bench_engine,
# bench_flow and (when present) bench_names. Captures are generated into
# bench/out/ (git-ignored) and reused while the generator and its flags stay
# the same (FILE.stamp).
#
# Environment: SD_BENCH_RUNS (repeats, best taken; default 3),
# SD_BENCH_SEED (1), SD_BENCH_PACKETS (2000000), SD_BENCH_FLOWS (50000),
# SD_BENCH_BIG=0 to skip the 450k-flow capture (4 GB; ndpiReader needs
# about 90 s on it), SD_BENCH_OUT (the capture directory), SD_BENCH_INLINE=0
# to skip the inline rows.
#
# The inline rows (as root; about 10 minutes more) come from lab_bench.sh
# (goodput, SKIP_WORKERS=1 TOGGLE_ROUNDS=4: 20 pairs a direction, 5 s transfers, 3 rounds) and
# drain_bench.sh (one worker, two, and the naive loop, each draining a full
# queue; 2 pairs of runs); their whole output
# is kept in bench/out/ (lab_bench.log, drain_bench.log) and summarised here.
#
# Timing: each program's CPU time (user + system, from /usr/bin/time or
# CLOCK_THREAD_CPUTIME_ID), best of the runs. On an idle core it is the wall
# time; on a shared machine it leaves out other jobs' time slices. Wall
# clock figures are printed below the table. Ratios compare figures taken in
# the same run, on the same file.
set -u -o pipefail

BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${SD_BENCH_OUT:-$HERE/out}
RUNS=${SD_BENCH_RUNS:-3}
SEED=${SD_BENCH_SEED:-1}
PACKETS=${SD_BENCH_PACKETS:-2000000}
FLOWS=${SD_BENCH_FLOWS:-50000}
BIGRUN=${SD_BENCH_BIG:-1}
PRESET=tw21-exact

die() { echo "bench/run.sh: $*" >&2; exit 1; }
for b in slowdown bench_mixgen bench_engine bench_flow; do
    [ -x "$BUILD/$b" ] || die "$BUILD/$b not found (build first: cmake --build $BUILD)"
done
command -v ndpiReader >/dev/null || die "ndpiReader not found (apt-get install libndpi-bin)"
[ -x /usr/bin/time ] || die "/usr/bin/time not found (apt-get install time)"
mkdir -p "$OUT"

# ---- inputs ----

MIX=$OUT/mix-s$SEED-p$PACKETS-f$FLOWS.pcap
BIG=$OUT/big-s$SEED.pcap
. "$(dirname "$0")/benchlib.bash"
gen() { bench_gen "$BUILD/bench_mixgen" "$1" "$SEED" "${@:2}" || die "cannot generate $1"; }
gen "$MIX" -p "$PACKETS" -f "$FLOWS"
[ "$BIGRUN" = 1 ] && gen "$BIG" --big

# ---- helpers ----

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

kv() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p" | head -n1; } # kv LINE KEY
calc() { awk "BEGIN { printf \"%.${2:-3}f\", $1 }"; }             # calc EXPR [DECIMALS]

# timed CMD...: runs it RUNS times; sets BEST_CPU, BEST_WALL (s) and PEAK_KB.
timed() {
    BEST_CPU=""; BEST_WALL=""; PEAK_KB=0
    for _ in $(seq "$RUNS"); do
        /usr/bin/time -f "%e %U %S %M" -o "$TMP/t" "$@" >/dev/null 2>"$TMP/err" || { cat "$TMP/err" >&2; die "$1 failed"; }
        read -r wall user sys kb <"$TMP/t"
        cpu=$(calc "$user + $sys")
        [ -z "$BEST_CPU" ] || awk "BEGIN{exit !($cpu < $BEST_CPU)}" && BEST_CPU=$cpu
        [ -z "$BEST_WALL" ] || awk "BEGIN{exit !($wall < $BEST_WALL)}" && BEST_WALL=$wall
        [ "$kb" -gt "$PEAK_KB" ] && PEAK_KB=$kb
    done
}

# ---- measurements ----

echo "bench: engine on $(basename "$MIX") ..." >&2
E=$("$BUILD/bench_engine" -P "$PRESET" -r "$RUNS" "$MIX" | grep '^key ') || die "bench_engine failed"
NPK=$(kv "$E" packets)

echo "bench: ndpiReader and slowdown pcap on $(basename "$MIX") ..." >&2
timed ndpiReader -i "$MIX" -q
NDPI_CPU=$BEST_CPU NDPI_WALL=$BEST_WALL
timed "$BUILD/slowdown" pcap --preset "$PRESET" --json "$MIX"
SD_CPU=$BEST_CPU SD_WALL=$BEST_WALL

if [ "$BIGRUN" = 1 ]; then
    echo "bench: peak memory on $(basename "$BIG") (450k flows) ..." >&2
    RUNS_SAVED=$RUNS RUNS=1
    timed "$BUILD/slowdown" pcap --preset "$PRESET" --json "$BIG"
    BIG_KB=$PEAK_KB BIG_CPU=$BEST_CPU
    timed ndpiReader -i "$BIG" -q
    BIG_NDPI_KB=$PEAK_KB BIG_NDPI_CPU=$BEST_CPU
    RUNS=$RUNS_SAVED
fi

echo "bench: flow table ..." >&2
F=$("$BUILD/bench_flow" | grep '^key ') || die "bench_flow failed"

N=""
if [ -x "$BUILD/bench_names" ]; then
    echo "bench: names ..." >&2
    N=$("$BUILD/bench_names" | tail -n1)
fi
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the table ----

ROWS=()
row() { ROWS+=("$1|$2|$3|$4|$5|$6"); } # figure value baseline ratio target result
pass() { awk "BEGIN{exit !($1)}" && echo PASS || echo FAIL; }

MPPS_SD=$(calc "$NPK / $SD_CPU / 1e6")
MPPS_NDPI=$(calc "$NPK / $NDPI_CPU / 1e6")
R=$(calc "$MPPS_SD / $MPPS_NDPI" 1)
row "Offline, 1 core, tw21-exact: slowdown pcap --json (Mpps)" "$MPPS_SD" "ndpiReader $MPPS_NDPI" "${R}x" ">= 10x" "$(pass "$R >= 10")"

FILE=$(kv "$E" file_mpps) PCAP=$(kv "$E" libpcap_mpps) READER=$(kv "$E" reader_mpps) FILEP=$(kv "$E" filepcap_mpps)
R=$(calc "$FILE / $PCAP" 2)
row "Offline, 1 core: read+decode+engine+tracking, in-process (Mpps)" "$FILE" "libpcap loop $PCAP" "$R" ">= 0.5" "$(pass "$R >= 0.5")"
row "The same over libpcap (the path for pcapng and -f) (Mpps)" "$FILEP" "libpcap loop $PCAP" "$(calc "$FILEP / $PCAP" 2)" ">= 0.5" "$(pass "$FILEP / $PCAP >= 0.5")"
row "Reader alone: pcapfile.h loop (Mpps)" "$READER" "libpcap loop $PCAP" "$(calc "$READER / $PCAP" 2)" "-" "info"
MEM=$(kv "$E" mem_mpps)
row "Engine alone, capture in memory (Mpps, ns/packet)" "$MEM ($(kv "$E" mem_ns) ns)" "libpcap loop $PCAP" "$(calc "$MEM / $PCAP" 2)" "-" "info"

if [ "$BIGRUN" = 1 ]; then
    MB=$(calc "$BIG_KB / 1024" 0) NMB=$(calc "$BIG_NDPI_KB / 1024" 0)
    row "Peak RSS, slowdown pcap, 450k flows (MB)" "$MB" "ndpiReader $NMB" "$(calc "$MB / $NMB" 2)" "< 400" "$(pass "$MB < 400")"
fi

if [ -n "$N" ]; then
    for set in refilter synth-mix synth-even; do
        V=$(kv "$N" "${set}_ms_per_1m")
        [ -n "$V" ] && row "Names: compile $set (ms per million patterns)" "$V" "-" "-" "< 1000" "$(pass "$V < 1000")"
    done
    V=$(kv "$N" synth-mix_p50_ns)
    [ -n "$V" ] && row "Names: lookup on the mixed 1M list, median (ns)" "$V" "-" "-" "< 200" "$(pass "$V < 200")"
    V=$(kv "$N" synth-mix_p50_batch_ns)
    [ -n "$V" ] && row "Names: the same names in batches (sd_names_lookup_batch, as slowdown match), median (ns)" "$V" "-" "-" "-" "info"
    V=$(kv "$N" synth-mix_p50_miss_ns)
    [ -n "$V" ] && row "Names: the same, names that match nothing, median (ns)" "$V" "-" "-" "-" "info"
    V=$(kv "$N" refilter_p50_ns)
    [ -n "$V" ] && row "Names: lookup on the Re:filter list (86k domains as d and *.d), median (ns)" "$V" "-" "-" "-" "info"
else
    row "Names (bench_names)" "not built" "-" "-" "-" "n/a"
fi

V=$(kv "$F" flow_bytes)
row "Flow state per flow, no reassembly (bytes)" "$V" "nDPI ~3600" "-" "<= 64" "$(pass "$V <= 64")"
V=$(kv "$F" big_mb)
row "$(kv "$F" big_flows) concurrent flows (MB)" "$V" "-" "-" "< 1024" "$(pass "$V < 1024 && $(kv "$F" big_found) == $(kv "$F" big_flows)")"
row "Flow insert / lookup at that size (ns)" "$(kv "$F" insert_ns) / $(kv "$F" lookup_ns)" "-" "-" "-" "info"
G=$(kv "$F" flood_growth_mb) C=$(kv "$F" flood_count) CAP=$(kv "$F" flood_cap) EV=$(kv "$F" flood_evicted) IN=$(kv "$F" flood_inserted)
row "Flood: ${IN} new flows, cap $CAP: RSS growth (MB)" "$G" "-" "-" "0, count = cap" "$(pass "$G < 1 && $C == $CAP && $EV == $IN")"
row "Flood: flows under an action kept (sampled LRU)" "$(kv "$F" flood_action_kept) of $(kv "$F" flood_action_total)" "-" "-" "-" "info"
G=$(kv "$F" eflood_growth_mb) A=$(kv "$F" eflood_active)
row "Engine flood: $(kv "$F" eflood_packets) SYNs: RSS growth (MB)" "$G" "-" "-" "0, active = cap" "$(pass "$G < 1 && $A == $CAP")"

S=$(kv "$E" scale2) SW=$(kv "$E" scale2_wall) SB=$(kv "$E" scale2_best)
row "Two workers vs one, in memory: fastest sequential run / fastest parallel run of 9 pairs (wall clock)" "${SB}x" "1 worker $(kv "$E" mem_mpps)" "$SB" ">= 1.7" "$(pass "$SB >= 1.7")"
row "The same, median of the 9 pairs' ratios (wall clock; lowest-highest $(kv "$E" scale2_lo)-$(kv "$E" scale2_hi))" "${SW}x" "-" "$SW" "-" "info"
row "The same, median by per-thread CPU time" "${S}x" "-" "$S" "-" "info"
row "The reading floor (the packets read, no engine), fastest / fastest and median of pairs" "$(kv "$E" floor2_best)x, $(kv "$E" floor2_wall)x" "-" "$(kv "$E" floor2_best)" "-" "info"
# ---- inline (root) ----
if [ "${SD_BENCH_INLINE:-1}" = 1 ] && [ "$(id -u)" = 0 ] && [ -x "$BUILD/bench_nfq_naive" ] && [ -x "$BUILD/bench_drain" ]; then
    echo "bench: inline, lab_bench.sh (goodput, naive loop live) ..." >&2
    LB=$OUT/lab_bench.log DB=$OUT/drain_bench.log
    SKIP_WORKERS=1 TOGGLE_ROUNDS=4 "$HERE/lab_bench.sh" "$BUILD" 5 3 >"$LB" 2>&1
    echo "bench: inline, drain_bench.sh (one worker, two, the naive loop) ..." >&2
    "$HERE/drain_bench.sh" "$BUILD" 50000 4 2 >"$DB" 2>&1
    # Their `key` lines (one per section of lab_bench.sh, the last line of drain_bench.sh).
    LK=$(sed -n 's/^key //p' "$LB" | tr '\n' ' ') DK=$(sed -n 's/^key //p' "$DB" | tr '\n' ' ')
    TU=$(kv "$LK" bpf_toggle_up) TD=$(kv "$LK" bpf_toggle_down) WU=$(kv "$LK" bpf_whole_up) WD=$(kv "$LK" bpf_whole_down)
    NW=$(kv "$LK" naive_wall) NC=$(kv "$LK" naive_cpu)
    DW=$(kv "$DK" scale2) DM=$(kv "$DK" scale2_median) DS=$(kv "$DK" scale2_summed)
    DN=$(kv "$DK" naive) DC=$(kv "$DK" naive_cpu)
    if [ -n "$TU" ] && [ -n "$TD" ]; then
        row "Inline, unthrottled bulk TCP, --bypass bpf, rules in / out within one transfer (median ratio): up, down" \
            "$TU, $TD" "no rules" "-" ">= 0.90" "$(pass "$TU >= 0.9 && $TD >= 0.9")"
        row "The same, whole 5 s transfers in turn (medians of 3): up, down" "$WU, $WD" "no rules" "-" "-" "info"
    else
        row "Inline goodput (lab_bench.sh)" "failed: see $LB" "-" "-" ">= 0.90" "n/a"
    fi
    if [ -n "$DN" ]; then
        row "Inline, every packet queued, a full queue drained (mix): slowdown run / naive loop, packets/s (per censor-CPU-second)" \
            "${DN}x (${DC}x)" "naive loop" "$DN" ">= 3" "$(pass "$DN >= 3")"
    else
        row "Inline, slowdown run / naive loop (drain_bench.sh)" "failed: see $DB" "-" "-" ">= 3" "n/a"
    fi
    [ -n "$NW" ] && row "The same, live downloads through the lab (its traffic needs the same CPUs), per wall second (per censor-CPU-second)" \
        "${NW}x (${NC}x)" "naive loop" "$NW" "-" "info"
    if [ -n "$DW" ]; then
        row "Inline, two workers / one: a full queue drained (mix, every packet queued), packets/s" "${DW}x" "1 worker" "$DW" \
            ">= 1.7" "$(pass "$DW >= 1.7")"
        row "The same, by median drain; the workers' rates summed per queue (an even split)" "${DM}x; ${DS}x" "-" "-" "-" "info"
    else
        row "Inline, two workers / one (drain_bench.sh)" "failed: see $DB" "-" "-" ">= 1.7" "n/a"
    fi
else
    row "Inline rows (goodput, naive loop, two workers)" "skipped (need root and SD_BENCH_INLINE=1)" "-" "-" "-" "n/a"
fi

if [ -x "$BUILD/bench_cores" ]; then
    echo "bench: cores ..." >&2
    K=$("$BUILD/bench_cores" -r 3 | grep '^key ')
    row "The machine: two threads / one of a dependent chain, an ALU-bound loop, a DRAM chase (about 2x each when quiet)" \
        "$(kv "$K" chain)x, $(kv "$K" ilp)x, $(kv "$K" dram)x" "-" "-" "-" "info"
fi

echo
echo "| Figure | Value | Baseline | Ratio | Target | Result |"
echo "|---|---|---|---|---|---|"
for r in "${ROWS[@]}"; do echo "| ${r//|/ | } |"; done
echo
echo "Capture: $(basename "$MIX"), $NPK packets; best of $RUNS runs by CPU time. Wall clock: slowdown pcap" \
     "$(calc "$NPK / $SD_WALL / 1e6") Mpps, ndpiReader $(calc "$NPK / $NDPI_WALL / 1e6") Mpps;" \
     "libpcap loop $(kv "$E" libpcap_wall_mpps) Mpps, in-process file path $(kv "$E" file_wall_mpps) Mpps."
[ "$BIGRUN" = 1 ] && echo "450k-flow capture: slowdown pcap ${BIG_CPU} s CPU, ndpiReader ${BIG_NDPI_CPU} s CPU."
echo "Load average before/after: $LOAD0 / $LOAD1 ($(nproc) CPUs). $(date -u +%Y-%m-%dT%H:%MZ), $(git -C "$HERE" rev-parse --short HEAD 2>/dev/null)."
