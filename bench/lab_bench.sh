#!/usr/bin/env bash
# lab_bench.sh - the inline censor's cost, measured in the lab (root).
#
#   bench/lab_bench.sh [BUILD_DIR] [SECONDS] [ROUNDS]
#
# 1. Bulk TCP goodput client -> server and server -> client through the lab,
#    alternating rounds with the censor running (preset tw21-initial, default
#    rules: the first 64 packets of each connection are queued) and with no
#    censor (the same lab, its rules removed). An unthrottled flow should
#    keep >= 90 % of the no-censor goodput.
# 2. Packets per second with EVERY packet through the queue (--queue-packets
#    0): `slowdown run` (recvmmsg batches, batch verdicts, one send per batch)
#    against bench_nfq_naive (one recv, one verdict and one send per packet),
#    both running the same engine with the same preset, and `slowdown run
#    --no-engine` for the I/O path alone. Both run fail-closed with the same
#    queue length and socket buffer: a censor that cannot keep up drops, TCP
#    slows down to what it can take, and the packets it handled per second
#    are its capacity (fail-open would let the surplus bypass it unseen).
#
# The machine's cores are shared by the client, the server and the censor
# (and by anyone else), so figures vary from run to run: compare within one run.
set -u
B=${1:-build}
S=${2:-5}
R=${3:-3}
SD=$(realpath "$B/slowdown")
NAIVE=$(realpath "$B/bench_nfq_naive")
[ "$(id -u)" = 0 ] || { echo "lab_bench: needs root" >&2; exit 77; }
[ -x "$SD" ] && [ -x "$NAIVE" ] || { echo "lab_bench: build $B first (slowdown, bench_nfq_naive)" >&2; exit 1; }

id=bench$$
dir=/run/slowdown/labs/$id
trap '"$SD" lab down "$id" >/dev/null 2>&1' EXIT
INSIDE=192.0.2.0/24,2001:db8:1::/64

fetch() { "$SD" lab exec "$id" client -- "$SD" lab fetch --plain --skip 0 --seconds "$S" "$@" 203.0.113.2; }
num() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
mbit() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1000 }'; }

# Starts a censor-side program in the background; waits for its ready file when it has one.
start_censor() { # LOG READY-FILE-or-"" ARGS...
    local log=$1 ready=$2
    shift 2
    "$SD" lab exec "$id" censor -- "$@" >"$log" 2>&1 &
    CPID=$!
    if [ -n "$ready" ]; then
        for _ in $(seq 100); do [ -e "$ready" ] && return 0; sleep 0.1; done
        echo "lab_bench: the censor did not start: $(cat "$log")" >&2
        exit 1
    fi
    sleep 1
}
stop_censor() { kill -TERM "$CPID"; wait "$CPID" 2>/dev/null; }
run_censor() { # LOG QUEUE-PACKETS [more run options]
    local log=$1 qp=$2
    shift 2
    rm -f "$dir/bench.ready"
    start_censor "$log" "$dir/bench.ready" "$SD" run --preset tw21-initial --inside "$INSIDE" --hook prerouting \
        --queue-packets "$qp" --ready-file "$dir/bench.ready" "$@"
}

"$SD" lab up --name "$id" --quiet --preset tw21-initial >/dev/null || exit 1
echo "lab_bench: lab $id, $S s transfers, $R rounds, $(nproc) CPUs"

# ---- 1. goodput, censor vs none ----
kill -TERM "$(sed -n 's/^censor_pid //p' "$dir/state")" # the lab's own censor: we run ours
sleep 0.5
declare -A sum
for r in $(seq "$R"); do
    for mode in censor none; do
        [ "$mode" = censor ] && run_censor "$dir/bench-$r.log" 64
        for d in up down; do
            extra=()
            [ "$d" = up ] && extra=(--up)
            k=$(fetch "${extra[@]}" | num kbps)
            sum[$mode-$d]=$(awk -v a="${sum[$mode-$d]:-0}" -v b="$k" 'BEGIN { print a + b }')
            printf '  round %d %-6s %-4s %8s Mbit/s\n' "$r" "$mode" "$d" "$(mbit "$k")"
        done
        [ "$mode" = censor ] && stop_censor
    done
done
echo
echo "1. bulk TCP goodput (mean of $R rounds; censor = tw21-initial, first 64 packets queued)"
for d in up down; do
    c=${sum[censor-$d]} n=${sum[none-$d]}
    awk -v c="$c" -v n="$n" -v r="$R" -v d="$d" 'BEGIN {
        printf "   %-4s  with censor %8.0f Mbit/s   no censor %8.0f Mbit/s   ratio %.3f  %s\n",
               d, c / r / 1000, n / r / 1000, c / n, (c / n >= 0.9 ? "(>= 0.90: ok)" : "(< 0.90)") }'
done

# ---- 2. packets per second, every packet queued ----
# Queue 0's counters from the kernel: packets dropped because the queue was
# full, and because the socket buffer was.
qstat() {
    "$SD" lab exec "$id" censor -- cat /proc/net/netfilter/nfnetlink_queue |
        awk '$1 == 0 { printf "     kernel: queue-full drops %d, socket-full drops %d\n", $6, $7 }'
}
pps_run() { # LABEL LOG [run options]
    local label=$1 log=$2
    shift 2
    run_censor "$log" 0 "$@"
    local line
    line=$(fetch)
    qstat
    stop_censor
    local p secs
    p=$(sed -n 's/.*packets \([0-9]*\) (receives.*/\1/p' "$log" | tail -1)
    secs=$(echo "$line" | num duration_s)
    awk -v l="$label" -v p="$p" -v s="$secs" -v k="$(echo "$line" | num kbps)" 'BEGIN {
        printf "   %-28s %9.0f packets/s  %7.0f Mbit/s\n", l, p / s, k / 1000 }'
    grep "receives" "$log" | tail -1 | sed 's/^slowdown run: /     /'
}
echo
echo "2. every packet through the queue (plain TCP download, $S s)"
pps_run "slowdown run (engine)" "$dir/pps-run.log" --fail-closed
pps_run "slowdown run --no-engine" "$dir/pps-noengine.log" --fail-closed --no-engine
# The naive loop needs the same rules: print them and run them in the censor namespace.
"$SD" run --print-rules --queue-packets 0 --hook prerouting | while read -r -a cmd; do
    "$SD" lab exec "$id" censor -- "${cmd[@]}" || exit 1
done
start_censor "$dir/naive.log" "" "$NAIVE" --queue 0 --preset tw21-initial
line=$(fetch)
qstat
stop_censor
p=$(sed -n 's/^packets \([0-9]*\).*/\1/p' "$dir/naive.log")
awk -v p="$p" -v s="$(echo "$line" | num duration_s)" -v k="$(echo "$line" | num kbps)" 'BEGIN {
    printf "   %-28s %9.0f packets/s  %7.0f Mbit/s\n", "naive loop (engine)", p / s, k / 1000 }'
