#!/usr/bin/env bash
# drain_bench.sh - one worker against two: the inline censor's own capacity,
# with the lab's traffic out of its way (root).
#
#   bench/drain_bench.sh [BUILD_DIR] [PACKETS] [ROUNDS] [PAIRS]
#
# lab_bench.sh round 3 times live downloads, and on two CPUs the lab's client
# and server take about as much CPU per packet as the censor: a second worker
# finds no free CPU. Here bench_drain separates the two in time. The censor
# (`slowdown run --queue-packets 0 --fail-closed`, every packet queued, the
# default forward hook, preset tw21-initial) is stopped; PACKETS frames of the
# benchmark's traffic mix (bench_mixgen: TLS handshakes, bulk TLS, QUIC, DNS)
# are injected into the lab, client-to-server on the client's link and
# server-to-client on the server's, and wait in the kernel's queues; then the
# censor continues and bench_drain times how long its workers take to give
# every verdict (each verdict also forwards its packet, as inline). ROUNDS
# such drains per censor run, and PAIRS pairs of runs, --workers 1 and
# --workers 2, in alternating order; every run takes the next slices of the
# capture (from its start again once all is used), each in a fresh censor. The client
# and the server drop what the censor forwards to them (raw PREROUTING), so
# there are no replies; the censor has permanent neighbours for them.
#
# After each pair, the naive loop (bench_nfq_naive, the baseline of "3x a naive
# loop") drains the same way; NAIVE_RUNS=0 leaves it out.
#
# Prints every drain, then per mode the packets over the drain time of all its
# rounds, and the ratio two workers / one (target >= 1.7), also per
# censor-CPU-second (schedstat of all the censor's threads), and a last line
# `key scale2=... naive=...` of the ratios for bench/run.sh.
#
# MODES="1" or "2" runs one mode only (to profile it); HOOK=prerouting passes --hook
# prerouting; BALANCE=flow passes --balance flow
# (below). Defaults: 50000 packets, 4 rounds, 4 pairs (1.6 M frames of the 2 M-packet
# mix of bench/run.sh, which it reuses from SD_BENCH_OUT or makes, ~1 GB).
set -u
B=${1:-build}
N=${2:-50000}
R=${3:-4}
P=${4:-4}
SD=$(realpath "$B/slowdown")
DRAIN=$(realpath "$B/bench_drain")
MIXGEN=$(realpath "$B/bench_mixgen")
[ "$(id -u)" = 0 ] || { echo "drain_bench: needs root" >&2; exit 77; }
for x in "$SD" "$DRAIN" "$MIXGEN"; do
    [ -x "$x" ] || { echo "drain_bench: build $B first (slowdown, bench_drain, bench_mixgen)" >&2; exit 1; }
done
for v in "$N" "$R" "$P"; do
    case $v in '' | *[!0-9]* | 0) echo "drain_bench: PACKETS, ROUNDS and PAIRS are positive numbers" >&2; exit 2 ;; esac
done
out=${SD_BENCH_OUT:-$(dirname "$0")/out}
cap=$out/mix-s1-p2000000-f50000.pcap
mkdir -p "$out"
. "$(dirname "$0")/benchlib.bash"
bench_gen "$MIXGEN" "$cap" 1 -p 2000000 -f 50000 >/dev/null || exit 1

id=drain$$
ns=sd-$id
dir=/run/slowdown/labs/$id
trap '"$SD" lab down "$id" >/dev/null 2>&1' EXIT
bench_lab_up "$SD" "$id" || exit 1

# What the censor forwards ends at the client and the server, unanswered.
ip netns exec "$ns-client" iptables-legacy -w -t raw -A PREROUTING -d 192.0.2.128/25 -j DROP
ip netns exec "$ns-client" ip6tables-legacy -w -t raw -A PREROUTING -d 2001:db8:1::100/120 -j DROP
ip netns exec "$ns-server" iptables-legacy -w -t raw -A PREROUTING -s 192.0.2.128/25 -j DROP
ip netns exec "$ns-server" ip6tables-legacy -w -t raw -A PREROUTING -s 2001:db8:1::100/120 -j DROP
mac() { ip -n "$1" -o link show "$2" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p'; }
cmac=$(mac "$ns-client" eth0)
smac=$(mac "$ns-server" eth0)
{
    for i in $(seq 128 254); do echo "neigh replace 192.0.2.$i lladdr $cmac dev in0 nud permanent"; done
    for i in $(seq 0 255); do printf 'neigh replace 2001:db8:1::1%02x lladdr %s dev in0 nud permanent\n' "$i" "$cmac"; done
    echo "neigh replace 203.0.113.2 lladdr $smac dev out0 nud permanent"
    echo "neigh replace 2001:db8:2::2 lladdr $smac dev out0 nud permanent"
} | ip -n "$ns-censor" -batch - || exit 1

# BALANCE=flow: the censor picks queues per flow (--balance flow), which turns connection
# tracking on (its reassembly puts the ports in every packet); one rule tracks for the
# one-worker runs too, so that both modes pay for it.
if [ "${BALANCE:-addr}" = flow ]; then
    for t in iptables-legacy ip6tables-legacy; do
        ip netns exec "$ns-censor" "$t" -w -t mangle -A PREROUTING -m conntrack --ctstate INVALID # counts only
    done
fi
# What a second thread can give on this machine now (bench/bench_cores.c): about 2x for all
# three loops when the machine is quiet; less when something else runs.
cores() { [ -x "$(dirname "$DRAIN")/bench_cores" ] && echo "drain_bench: $1: $("$(dirname "$DRAIN")/bench_cores" -r 3 | sed -n 's/^key //p')"; }
cores "the machine, two threads / one, before"
echo "drain_bench: lab $id, $N packets a drain, $R drains a run, $P pairs of runs, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
slice=0
# Runs start over from the capture's beginning when they have used it all (each run is a
# fresh censor, so none has seen the flows before); 1% of its frames are kept in reserve for
# those left out (longer than the MTU, or not IP).
frames=$("$DRAIN" --count "$cap") || exit 1
runs_in_cap=$((frames * 99 / 100 / (N * R)))
[ "$runs_in_cap" -ge 1 ] || { echo "drain_bench: PACKETS x ROUNDS must be under $((frames * 99 / 100)), the frames of $cap" >&2; exit 2; }
: >"$dir/drains"
# The naive loop (bench_nfq_naive: one receive, one verdict and one send per packet) in
# the same place: slowdown run's rules, installed by hand, and the same queue and buffer.
NAIVE=$(dirname "$DRAIN")/bench_nfq_naive
# Both censors: every packet queued, room in the queue and its socket for a whole drain.
rules=(--preset tw21-initial --inside 192.0.2.0/24,2001:db8:1::/64 --queue-packets 0)
room=(--maxlen 1048576 --rcvbuf 1073741824)
naive_rules() { # --install-rules or --remove-rules
    "$SD" lab exec "$id" censor -- "$SD" run "${rules[@]}" "$1" >/dev/null 2>&1
}
run() { # WORKERS (1, 2 or naive)
    local w=$1 log=$dir/drain-$slice-w$1.log ready=$dir/drain.ready pid
    if [ "$w" = naive ]; then
        naive_rules --install-rules || { echo "drain_bench: cannot install the rules for the naive loop" >&2; exit 1; }
        bench_start "$SD" "$id" "$log" "" "$NAIVE" --queue 0 --preset tw21-initial "${room[@]}"
    else
        bench_start "$SD" "$id" "$log" "$ready" "$SD" run "${rules[@]}" --fail-closed "${room[@]}" --workers "$w" \
            --ready-file "$ready" ${BALANCE:+--balance "$BALANCE"} ${HOOK:+--hook "$HOOK"}
    fi
    pid=$BENCH_PID
    "$DRAIN" --lab "$id" --pid "$pid" -n "$N" -r "$R" --skip $((slice % runs_in_cap * N * R)) "$cap" | sed "s/^/  workers $w  /"
    local rc=${PIPESTATUS[0]}
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null
    [ "$w" = naive ] && naive_rules --remove-rules
    slice=$((slice + 1))
    [ "$rc" = 0 ] || { echo "drain_bench: a drain lost packets (bench_drain exit $rc); log: $(tail -3 "$log")" >&2; exit 1; }
}
for p in $(seq "$P"); do
    if [ $((p % 2)) = 1 ]; then order="1 2"; else order="2 1"; fi
    [ -x "$NAIVE" ] && [ "${NAIVE_RUNS:-1}" = 1 ] && order="$order naive"
    [ -n "${MODES:-}" ] && order=$MODES # e.g. MODES=2: two workers only (for profiling)
    for w in $order; do run "$w" > >(tee -a "$dir/drains"); done
done

cores "the machine, two threads / one, after"
awk -v load="$(cut -d' ' -f1-3 /proc/loadavg)" '
    { w = $2; nq = 0; ne = 0
      for (i = 1; i <= NF; i++) {
          if ($i == "queued") { q[w] += $(i + 1); for (j = i + 2; j <= NF; j++) { x = $j; gsub(/[()]/, "", x); per[++nq] = x; if ($j ~ /\)$/) break } }
          if ($i == "drain") t[w] += $(i + 1)
          if ($i == "CPU") c[w] += $(i + 1)
          if ($i == "machine") mc[w] += $(i + 1)
          if ($i == "packets/s") v[w, ++n[w]] = $(i - 1)
          if ($i == "(ms):") for (j = i + 1; j <= NF; j++) emp[++ne] = $j
      }
      # Per queue, its packets over the time it took to empty (the rate of its worker
      # while it had work); the sum is what the workers give when the split is even.
      cap = 0; for (j = 1; j <= nq && j <= ne; j++) if (emp[j] > 0) cap += per[j] / (emp[j] / 1000)
      sumcap[w] += cap }
    END {
        for (w = 1; w <= 2; w++) {
            m = n[w]; for (i = 1; i <= m; i++) s[i] = v[w, i]
            for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (s[j] < s[i]) { x = s[i]; s[i] = s[j]; s[j] = x }
            med[w] = m % 2 ? s[(m + 1) / 2] : (s[m / 2] + s[m / 2 + 1]) / 2
            pps[w] = t[w] ? q[w] / (t[w] / 1000) : 0; cps[w] = c[w] ? q[w] / (c[w] / 1000) : 0
            mps[w] = mc[w] ? q[w] / (mc[w] / 1000) : 0
            printf "workers %d: %d drains, %d packets in %.0f ms: %.0f packets/s (median drain %.0f), %.0f per censor-CPU-second, %.0f per machine-CPU-second (%.2f CPUs busy)\n",
                   w, m, q[w], t[w], pps[w], med[w], cps[w], mps[w], t[w] ? mc[w] / t[w] : 0
        }
        printf "two workers / one, per machine-CPU-second (all the kernel does for the workers, on any CPU): %.2fx\n",
               mps[1] ? mps[2] / mps[1] : 0
        printf "two workers / one: %.2fx packets/s, %.2fx by median drains, %.2fx per censor-CPU-second (target >= 1.7); load %s\n",
               pps[1] ? pps[2] / pps[1] : 0, med[1] ? med[2] / med[1] : 0, cps[1] ? cps[2] / cps[1] : 0, load
        summed = sumcap[1] && n[2] ? (sumcap[2] / n[2]) / (sumcap[1] / n[1]) : 0
        printf "two workers / one, rates summed per queue (packets over the time to empty: an even split): %.2fx\n", summed
        key = sprintf("key scale2=%.2f scale2_median=%.2f scale2_summed=%.2f scale2_machine=%.2f", pps[1] ? pps[2] / pps[1] : 0,
                      med[1] ? med[2] / med[1] : 0, summed, mps[1] ? mps[2] / mps[1] : 0)
        if (n["naive"]) {
            w = "naive"; pn = t[w] ? q[w] / (t[w] / 1000) : 0; cn = c[w] ? q[w] / (c[w] / 1000) : 0
            printf "naive loop: %d drains, %d packets in %.0f ms: %.0f packets/s, %.0f per censor-CPU-second\n", n[w], q[w], t[w], pn, cn
            printf "one worker / naive loop: %.2fx packets/s, %.2fx per censor-CPU-second (target >= 3)\n",
                   pn ? pps[1] / pn : 0, cn ? cps[1] / cn : 0
            key = key sprintf(" naive=%.2f naive_cpu=%.2f", pn ? pps[1] / pn : 0, cn ? cps[1] / cn : 0)
        }
        print key
    }' "$dir/drains"
