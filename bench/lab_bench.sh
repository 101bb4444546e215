#!/usr/bin/env bash
# lab_bench.sh - the inline censor's cost, measured in the lab (root).
#
#   bench/lab_bench.sh [BUILD_DIR] [SECONDS] [ROUNDS]
#
# 1. Bulk TCP goodput client -> server and server -> client through the lab,
#    alternating rounds with the censor running (preset tw21-initial, default
#    rules: the first 64 packets of each connection are queued) and with no
#    censor (the same lab, its rules removed). An unthrottled flow should
#    keep >= 90 % of the no-censor goodput. Medians of the rounds. A third
#    mode tracks connections with no censor (one conntrack rule): the
#    censor's default rules need conntrack, which costs 15-20% of a single
#    10 Gbit/s flow's forwarding on this VM, and "none" has none. Two more
#    run the censor without conntrack: --bypass ipset (settled flows leave
#    the queue through kernel sets) and --bypass bpf (through an eBPF
#    program's map); the verdict line is bpf's.
#    ONLY_GOODPUT=1 stops after this round.
# 2. Packets per second with EVERY packet through the queue (--queue-packets
#    0): `slowdown run` (recvmmsg batches, batch verdicts, one send per batch)
#    against bench_nfq_naive (one recv, one verdict and one send per packet),
#    both running the same engine with the same preset, and `slowdown run
#    --no-engine` for the I/O path alone. Both run fail-closed with the same
#    queue length and socket buffer: a censor that cannot keep up drops, TCP
#    slows down to what it can take, and the packets it handled per second
#    are its capacity (fail-open would let the surplus bypass it unseen).
#    When the lab's own traffic is the limit instead (on 2 CPUs the client and
#    server need about as much CPU per packet as the censor), a fast censor
#    idles part of the time: packets per second of the censor's own CPU time
#    (all its threads, /proc/PID/task/*/stat) compares the two loops then.
# 3. One worker against two (--workers 1 / 2, every packet queued,
#    fail-closed), alternating rounds in the same lab with the same
#    WORKER_FLOWS (default 4) parallel plain TCP downloads, plus the same
#    downloads with no censor at all (what the traffic alone costs). The
#    kernel's --queue-balance hashes the address pair only (not the ports),
#    so flows from one client address all land in one queue: the client gets
#    extra addresses 192.0.2.10.. and a calibration step (two workers, one
#    1-byte fetch per address, the kernel's per-queue packet counters) picks
#    WORKER_FLOWS/2 addresses that land in each queue; every flow binds one.
#    Per mode: packets per wall second, per censor-CPU-second (utime + stime
#    of all the censor's threads, /proc/PID/task/*/stat), per second of the
#    busiest worker (what the wall clock would show if each worker had a core
#    of its own, as the offline two-worker figure is taken), and the CPU
#    seconds of the server, the clients and the whole machine (/proc/stat).
#    SKIP_WORKERS=1 leaves this round out.
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

. "$(dirname "$0")/benchlib.bash"
start_censor() { # LOG READY-FILE-or-"" ARGS...
    bench_start "$SD" "$id" "$@"
    CPID=$BENCH_PID
}
stop_censor() { kill -TERM "$CPID"; wait "$CPID" 2>/dev/null; }
run_censor() { # LOG QUEUE-PACKETS [more run options]
    local log=$1 qp=$2
    shift 2
    start_censor "$log" "$dir/bench.ready" "$SD" run --preset tw21-initial --inside "$INSIDE" --hook prerouting \
        --queue-packets "$qp" --ready-file "$dir/bench.ready" "$@"
}

bench_lab_up "$SD" "$id" || exit 1 # the lab's own censor is stopped: we run ours
echo "lab_bench: lab $id, $S s transfers, $R rounds, $(nproc) CPUs"

# ---- 1. goodput, censor vs none ----
# Mode "ct": no censor, but the censor namespace tracks connections (one
# conntrack rule, as any stateful firewall has): the censor's rules need
# conntrack (connbytes, connmark), and with no rule at all the kernel does not
# track, so "none" is cheaper than any stateful forwarding path.
ct_rule() { # -A or -D
    local ipt
    for ipt in iptables-legacy ip6tables-legacy; do
        "$SD" lab exec "$id" censor -- "$ipt" -w -t mangle "$1" PREROUTING -m conntrack --ctstate INVALID -j DROP
    done
}
declare -A vals # "MODE-DIR" -> the rounds' kbit/s, space-separated
for r in $(seq "$R"); do
    for mode in censor none ct ipset bpf; do
        [ "$mode" = censor ] && run_censor "$dir/bench-$r.log" 64
        [ "$mode" = ipset ] && run_censor "$dir/bench-ipset-$r.log" 64 --bypass ipset
        [ "$mode" = bpf ] && run_censor "$dir/bench-bpf-$r.log" 64 --bypass bpf
        [ "$mode" = ct ] && ct_rule -A
        for d in up down; do
            extra=()
            [ "$d" = up ] && extra=(--up)
            k=$(fetch "${extra[@]}" | num kbps)
            vals[$mode-$d]="${vals[$mode-$d]:-} $k"
            printf '  round %d %-6s %-4s %8s Mbit/s\n' "$r" "$mode" "$d" "$(mbit "$k")"
        done
        case $mode in censor | ipset | bpf) stop_censor ;; esac
        [ "$mode" = ct ] && ct_rule -D
    done
done
echo
# The median of the rounds: one 5 s transfer in a few stalls for a moment on
# a shared machine, with or without the censor, and would drag a mean.
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
echo "1. bulk TCP goodput (median of $R rounds; censor = tw21-initial; conntrack: first 64 packets queued; bpf, ipset: until the flow settles)"
for d in up down; do
    c=$(median <<<"${vals[censor-$d]}") n=$(median <<<"${vals[none-$d]}") t=$(median <<<"${vals[ct-$d]}")
    i=$(median <<<"${vals[ipset-$d]}") b=$(median <<<"${vals[bpf-$d]}")
    awk -v c="$c" -v n="$n" -v t="$t" -v i="$i" -v b="$b" -v d="$d" 'BEGIN {
        printf "   %-4s  with censor (--bypass bpf) %8.0f Mbit/s   no censor %8.0f Mbit/s   ratio %.3f  %s\n",
               d, b / 1000, n / 1000, b / n, (b / n >= 0.9 ? "(>= 0.90: ok)" : "(< 0.90)")
        printf "         with censor (--bypass ipset) %8.0f Mbit/s   ratio %.3f\n", i / 1000, i / n
        printf "         with censor (conntrack, default) %8.0f Mbit/s   ratio %.3f\n", c / 1000, c / n
        printf "         no censor, connections tracked %8.0f Mbit/s   conntrack censor / that %.3f\n", t / 1000, c / t
        printf "key bpf_whole_%s=%.3f\n", d, b / n }'
done


# ---- 1b. the censor's rules in and out within one transfer ----
# Whole transfers in turn scatter by 20-40% on this host (its speed drifts
# within minutes), more than the difference sought. Here one transfer of
# 9 s (the server's sink stops at 16 GiB) runs with the censor up; every
# 0.75 s the jump to its chain is taken out or put back, and the rate of
# each phase is read over its last 0.55 s from the censor namespace's
# interface counters (/proc/PID/net/dev: no process started meanwhile).
# Each phase with the rules is compared with the mean of the phases without
# around it, and the median of those ratios is printed. (Not for the
# conntrack mode: its rules keep the kernel tracking even while no packet
# reaches them, so its phases without would not be without.) TOGGLE_ROUNDS
# transfers per mode and direction (default 3, 5 pairs each).
jump() { "$SD" lab exec "$id" censor -- iptables-legacy -w -t mangle "$1" PREROUTING -j SLOWDOWN-0 2>/dev/null; }
dev_bytes() { # bytes sent by the censor's two interfaces
    local l t=0
    while read -r l; do
        # shellcheck disable=SC2086
        set -- $l
        case $1 in in0: | out0:) t=$((t + ${10})) ;; esac
    done <"/proc/$CPID/net/dev"
    echo "$t"
}
uptime_s() { local s _; read -r s _ </proc/uptime; echo "$s"; }
toggle_round() { # DIR BYPASS -> the ratios, one a line
    local d=$1 bypass=$2 k i a b t0 t1 extra=()
    [ "$d" = up ] && extra=(--up)
    for k in $(seq "${TOGGLE_ROUNDS:-3}"); do
        run_censor "$dir/bench-toggle.log" 64 --bypass "$bypass"
        "$SD" lab exec "$id" client -- "$SD" lab fetch --plain --skip 0 --seconds 9 "${extra[@]}" 203.0.113.2 >/dev/null &
        local fpid=$! rates=()
        sleep 0.6
        for i in $(seq 10); do
            [ $((i % 2)) = 1 ] && jump -D
            sleep 0.12
            a=$(dev_bytes) t0=$(uptime_s)
            sleep 0.55
            b=$(dev_bytes) t1=$(uptime_s)
            [ $((i % 2)) = 1 ] && jump -I
            rates+=("$(awk -v a="$a" -v b="$b" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.0f", (b - a) / (t1 - t0) }')")
        done
        wait "$fpid"
        stop_censor
        # phases 1,3,..,9 without the rules, 2,4,..,10 with them
        for i in 1 3 5 7; do
            awk -v off1="${rates[$((i - 1))]}" -v on="${rates[$i]}" -v off2="${rates[$((i + 1))]}" \
                'BEGIN { printf "%.4f\n", on / ((off1 + off2) / 2) }'
        done
        awk -v off="${rates[8]}" -v on="${rates[9]}" 'BEGIN { printf "%.4f\n", on / off }'
    done
}
quart() { sort -n | awk '{ v[NR] = $1 } END { printf "median %.3f (quartiles %.3f-%.3f, %d pairs)", v[int((NR + 1) / 2)], v[int(NR / 4) + 1], v[int(3 * NR / 4)], NR }'; }
echo
echo "1b. bulk TCP goodput with the censor's rules in / out, every 0.75 s within one transfer (censor = tw21-initial)"
for bypass in bpf ipset; do
    for d in up down; do
        q=$(toggle_round "$d" "$bypass" | quart)
        printf '   %-4s --bypass %-9s  with rules / without: %s\n' "$d" "$bypass" "$q"
        q=${q#median }
        echo "key ${bypass}_toggle_$d=${q%% *}"
    done
done

[ "${ONLY_GOODPUT:-0}" = 1 ] && exit 0

# ---- 2. packets per second, every packet queued ----
# Queue 0's counters from the kernel: packets dropped because the queue was
# full, and because the socket buffer was.
qstat() {
    "$SD" lab exec "$id" censor -- cat /proc/net/netfilter/nfnetlink_queue |
        awk '$1 == 0 { printf "     kernel: queue-full drops %d, socket-full drops %d\n", $6, $7 }'
}
HZ=$(getconf CLK_TCK)
# The fields of /proc/.../stat after "PID (COMM) ": $12 utime, $13 stime, $14 cutime, $15 cstime.
ticks() { sed 's/^.*) //' "$1" 2>/dev/null | awk '{ print $12 + $13 }'; }
# CPU ticks (user + system) of all the threads of PID so far.
cpu_ticks() { for t in /proc/"$1"/task/*; do ticks "$t/stat"; done | awk '{ t += $1 } END { print t + 0 }'; }
# Runs the download against the censor started as CPID, then stops it: LINE
# is the fetch's JSON, TICKS the censor's CPU ticks meanwhile.
timed_fetch() {
    local c0
    c0=$(cpu_ticks "$CPID")
    LINE=$(fetch)
    TICKS=$(($(cpu_ticks "$CPID") - c0))
    qstat
    stop_censor
}
# pps_line KEY LABEL PACKETS: prints and keeps (PPS, CPS by KEY) the packets
# per wall second and per second of the censor's CPU of the last
# timed_fetch. When the lab's traffic, not the censor, is the limit (the
# censor idles part of the time), only the second compares censors.
declare -A PPS CPS
pps_line() {
    PPS[$1]=$(awk -v p="$3" -v s="$(num duration_s <<<"$LINE")" 'BEGIN { print p / s }')
    CPS[$1]=$(awk -v p="$3" -v t="$TICKS" -v hz="$HZ" 'BEGIN { print (t > 0 ? p / (t / hz) : 0) }')
    awk -v l="$2" -v pps="${PPS[$1]}" -v k="$(num kbps <<<"$LINE")" -v cps="${CPS[$1]}" -v t="$TICKS" -v hz="$HZ" 'BEGIN {
        printf "   %-28s %9.0f packets/s  %7.0f Mbit/s  %9.0f per censor-CPU-s (%.2f s of CPU)\n",
               l, pps, k / 1000, cps, t / hz }'
}
pps_run() { # KEY LABEL LOG [run options]
    local key=$1 label=$2 log=$3
    shift 3
    run_censor "$log" 0 "$@"
    timed_fetch
    pps_line "$key" "$label" "$(sed -n 's/.*packets \([0-9]*\) (receives.*/\1/p' "$log" | tail -1)"
    grep "receives" "$log" | tail -1 | sed 's/^slowdown run: /     /'
}
echo
echo "2. every packet through the queue (plain TCP download, $S s)"
pps_run run "slowdown run (engine)" "$dir/pps-run.log" --fail-closed
pps_run noengine "slowdown run --no-engine" "$dir/pps-noengine.log" --fail-closed --no-engine
# The naive loop needs the same rules: print them and run them in the censor namespace.
"$SD" run --print-rules --queue-packets 0 --hook prerouting | while read -r -a cmd; do
    "$SD" lab exec "$id" censor -- "${cmd[@]}" || exit 1
done
start_censor "$dir/naive.log" "" "$NAIVE" --queue 0 --preset tw21-initial
timed_fetch
pps_line naive "naive loop (engine)" "$(sed -n 's/^packets \([0-9]*\).*/\1/p' "$dir/naive.log")"
awk -v rp="${PPS[run]}" -v np="${PPS[naive]}" -v rc="${CPS[run]}" -v nc="${CPS[naive]}" 'BEGIN {
    printf "   slowdown run / naive loop: %.2fx packets per wall second, %.2fx per censor-CPU-second (target >= 3)\n",
           (np > 0 ? rp / np : 0), (nc > 0 ? rc / nc : 0)
    printf "key naive_wall=%.2f naive_cpu=%.2f\n", (np > 0 ? rp / np : 0), (nc > 0 ? rc / nc : 0) }'

# ---- 3. one worker vs two, every packet queued ----
if [ "${SKIP_WORKERS:-0}" = 1 ]; then
    echo
    echo "3. one worker vs two: skipped (SKIP_WORKERS=1)"
    exit 0
fi
FLOWS=${WORKER_FLOWS:-4}
case $FLOWS in '' | *[!0-9]* | 0) FLOWS=4 ;; esac
[ $((FLOWS % 2)) = 0 ] || FLOWS=$((FLOWS + 1))
server_pid=$(sed -n 's/^server_pid //p' "$dir/state")

# Each thread of PID as "TID NAME TICKS WAIT-NS" (worker threads are named sd-queue-N; WAIT-NS: time
# spent runnable but waiting for a CPU, from schedstat).
thread_ticks() {
    for t in /proc/"$1"/task/*; do
        echo "${t##*/} $(cat "$t/comm") $(ticks "$t/stat") $(awk '{ print $2 + 0 }' "$t/schedstat" 2>/dev/null || echo 0)"
    done
}
machine_busy() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; } # user nice system irq softirq steal
# TCP segments sent, by the kernel's count (in MSS-sized segments: what the queue sees), in namespace ROLE.
outsegs() {
    "$SD" lab exec "$id" "$1" -- cat /proc/net/snmp |
        awk '$1 == "Tcp:" { if (!h) { for (i = 2; i <= NF; i++) if ($i == "OutSegs") c = i; h = 1 } else print $c }'
}
# Per queue of the censor: "QUEUE PACKETS QUEUE-FULL-DROPS SOCKET-FULL-DROPS" (since the queue was bound).
queues() { "$SD" lab exec "$id" censor -- cat /proc/net/netfilter/nfnetlink_queue | awk '{ print $1, $8, $6, $7 }'; }
# One plain download bound to ADDR, its JSON line then "cpu TICKS" (its own user + system time) into OUT.
fetch_cpu() { # OUT ADDR SECONDS-or-"--bytes N"
    local out=$1 a=$2
    shift 2
    # shellcheck disable=SC2016 # expanded by the inner bash: its own pid and its children's times
    "$SD" lab exec "$id" client -- bash -c '"$@"; set -- $(sed "s/^.*) //" /proc/$$/stat); echo "cpu $((${14} + ${15}))"' \
        _ "$SD" lab fetch --plain --skip 0 --bind "$a" "$@" 203.0.113.2 >"$out" 2>&1
}

# Calibration: which client address lands in which queue with two workers.
run_censor "$dir/w-calib.log" 0 --workers 2
declare -a pick0=() pick1=()
for i in $(seq 10 73); do
    a=192.0.2.$i
    "$SD" lab exec "$id" client -- ip addr add "$a/24" dev eth0 2>/dev/null
    b0=$(queues | awk '$1 == 0 { print $2 }')
    b1=$(queues | awk '$1 == 1 { print $2 }')
    fetch_cpu "$dir/w-calib.out" "$a" --bytes 1
    a0=$(queues | awk '$1 == 0 { print $2 }')
    a1=$(queues | awk '$1 == 1 { print $2 }')
    if [ "$a0" -gt "$b0" ] && [ "$a1" = "$b1" ] && [ ${#pick0[@]} -lt $((FLOWS / 2)) ]; then
        pick0+=("$a")
    elif [ "$a1" -gt "$b1" ] && [ "$a0" = "$b0" ] && [ ${#pick1[@]} -lt $((FLOWS / 2)) ]; then
        pick1+=("$a")
    fi
    [ ${#pick0[@]} -ge $((FLOWS / 2)) ] && [ ${#pick1[@]} -ge $((FLOWS / 2)) ] && break
done
stop_censor
echo
if [ ${#pick0[@]} -lt $((FLOWS / 2)) ] || [ ${#pick1[@]} -lt $((FLOWS / 2)) ]; then
    echo "3. one worker vs two: skipped (no $((FLOWS / 2)) client addresses per queue among 192.0.2.10-73)"
    exit 0
fi
ADDRS=()
for ((i = 0; i < FLOWS / 2; i++)); do ADDRS+=("${pick0[i]}" "${pick1[i]}"); done
echo "3. one worker vs two, every packet queued ($FLOWS plain TCP downloads, $S s, from ${ADDRS[*]}:"
echo "   $((FLOWS / 2)) per queue with two workers; load average $(cut -d' ' -f1-3 /proc/loadavg))"

# One round of one mode: "workers 1", "workers 2" or "none" (no censor). Prints its lines and
# appends its figures to $dir/w-sums for the means.
w_round() { # ROUND MODE
    local r=$1 mode=$2 w=${2#workers } log=$dir/w-$1-${2// /}.log
    local -a pids=() th0=() th1=()
    local rc=0 s0 s1 m0 m1 t0 t1 os0 os1 oc0 oc1 k=0 ccpu=0 p qs="" f
    if [ "$mode" != none ]; then
        run_censor "$log" 0 --fail-closed --workers "$w"
        mapfile -t th0 < <(thread_ticks "$CPID")
    fi
    # The slow samples (lab exec) outside the timed interval, the machine's inside it.
    os0=$(outsegs server)
    oc0=$(outsegs client)
    s0=$(ticks "/proc/$server_pid/stat")
    t0=$(date +%s%N)
    m0=$(machine_busy)
    for ((i = 0; i < FLOWS; i++)); do
        fetch_cpu "$dir/w-$r-${mode// /}-$i.out" "${ADDRS[i]}" --seconds "$S" &
        pids+=($!)
    done
    wait "${pids[@]}"
    m1=$(machine_busy)
    t1=$(date +%s%N)
    s1=$(ticks "/proc/$server_pid/stat")
    [ "$mode" != none ] && mapfile -t th1 < <(thread_ticks "$CPID")
    os1=$(outsegs server)
    oc1=$(outsegs client)
    if [ "$mode" != none ]; then
        qs=$(queues)
        stop_censor
        p=$(sed -n 's/.*packets \([0-9]*\) (receives.*/\1/p' "$log" | tail -1)
        rc=$(sed -n 's/.*(receives \([0-9]*\),.*/\1/p' "$log" | tail -1)
    else
        p=$((os1 - os0 + oc1 - oc0))
    fi
    for ((i = 0; i < FLOWS; i++)); do
        f=$dir/w-$r-${mode// /}-$i.out
        k=$(awk -v a="$k" -v b="$(num kbps <"$f")" 'BEGIN { print a + b }')
        ccpu=$((ccpu + $(sed -n 's/^cpu //p' "$f")))
    done
    # Censor threads: "NAME TICKS WAIT-NS" during the transfers (by thread id).
    local tl
    tl=$(printf '%s\n' "${th0[@]}" -- "${th1[@]}" | awk '
        $0 == "--" { end = 1; next }
        NF == 4 && !end { a[$1] = $3; b[$1] = $4 }
        NF == 4 && end { printf "%s %d %.0f\n", $2, $3 - a[$1], $4 - b[$1] }')
    awk -v r="$r" -v mode="$mode" -v p="$p" -v k="$k" -v t0="$t0" -v t1="$t1" -v hz="$HZ" \
        -v srv=$((s1 - s0)) -v cli="$ccpu" -v mach=$((m1 - m0)) -v segs=$((os1 - os0 + oc1 - oc0)) \
        -v ncpu="$(nproc)" -v tl="$tl" -v qs="$qs" -v rc="$rc" 'BEGIN {
        wall = (t1 - t0) / 1e9
        n = split(tl, L, "\n"); cen = 0; busiest = 0; bwait = 0; thr = ""
        for (i = 1; i <= n; i++) {
            if (split(L[i], f, " ") < 3) continue
            cen += f[2]
            if (f[1] ~ /^sd-queue-/) {
                if (f[2] > busiest) { busiest = f[2]; bwait = f[3] / 1e9 }
                thr = thr sprintf(" %s %.2f (waited %.2f)", f[1], f[2] / hz, f[3] / 1e9)
            } else thr = thr sprintf(" %s(main) %.2f", f[1], f[2] / hz)
        }
        printf "  round %d %-9s %9.0f %s  %6.0f Mbit/s", r, mode, p / wall, (mode == "none" ? "segments/s" : "packets/s "), k / 1000
        if (mode != "none") printf "  %8.0f per censor-CPU-s  %8.0f per busiest-worker-s", (cen ? p / (cen / hz) : 0), (busiest ? p / (busiest / hz) : 0)
        printf "\n"
        printf "     CPU s in %.2f s:", wall
        if (mode != "none") printf " censor %.2f (%s ),", cen / hz, substr(thr, 2)
        printf " server %.2f, clients %.2f, machine %.2f of %.2f (%.0f%% busy; others %.2f)", srv / hz, cli / hz, mach / hz, ncpu * wall,
               100 * mach / hz / (ncpu * wall), (mach - cen - srv - cli) / hz
        if (mode != "none") printf "; busiest worker ran %.0f%% and waited for a CPU %.0f%% of the time", 100 * busiest / hz / wall, 100 * bwait / wall
        printf "\n"
        if (mode != "none") {
            m = split(qs, Q, "\n"); printf "     queues:"
            for (i = 1; i <= m; i++) if (split(Q[i], g, " ") == 4) printf " %s: %d packets (drops %d queue-full, %d socket-full);", g[1], g[2], g[3], g[4]
            printf " TCP segments sent %d; %.1f packets per receive\n", segs, (rc ? p / rc : 0)
        }
        # for the means: packets, wall, censor ticks, busiest ticks, machine ticks, the lab ticks
        printf "%s|%s|%s|%s|%s|%s|%s\n", mode, p, wall, cen, busiest, mach, cen + srv + cli > "/dev/stderr"
    }' 2>>"$dir/w-sums"
}
: >"$dir/w-sums"
for r in $(seq "$R"); do
    for mode in "workers 1" "workers 2" none; do
        w_round "$r" "$mode"
    done
done
awk -F'|' -v hz="$HZ" -v ncpu="$(nproc)" -v la="$(cut -d' ' -f1-3 /proc/loadavg)" '
    { p[$1] += $2; t[$1] += $3; c[$1] += $4; b[$1] += $5; m[$1] += $6; l[$1] += $7 }
    END {
        for (w = 1; w <= 2; w++) {
            k = "workers " w
            wall[w] = p[k] / t[k]; cpu[w] = c[k] ? p[k] / (c[k] / hz) : 0; bus[w] = b[k] ? p[k] / (b[k] / hz) : 0
            printf "   %-9s %9.0f packets/s  %8.0f per censor-CPU-s  %8.0f per busiest-worker-s  machine %.0f%% busy, the lab %.0f%%\n",
                   k, wall[w], cpu[w], bus[w], 100 * m[k] / hz / (ncpu * t[k]), 100 * l[k] / hz / (ncpu * t[k])
        }
        printf "   %-9s %9.0f TCP segments/s (no censor)  machine %.0f%% busy, the lab %.0f%%\n",
               "none", p["none"] / t["none"], 100 * m["none"] / hz / (ncpu * t["none"]), 100 * l["none"] / hz / (ncpu * t["none"])
        # What a packet costs the lab (censor, clients, server, and the kernel work done in their
        # time: forwarding, TCP), and the packet rate all the CPUs would give at the two-worker cost.
        for (w = 1; w <= 2; w++) us[w] = 1e6 * l["workers " w] / hz / p["workers " w]
        printf "   lab CPU per packet: workers 1 %.1f us, workers 2 %.1f us, no censor %.1f us (per segment)\n",
               us[1], us[2], 1e6 * l["none"] / hz / p["none"]
        # The machine with nothing else on it, at the measured costs per packet: cw in the censor
        # threads, ct in the clients and the server (kernel work is charged to whichever of them
        # it ran under). W workers run at most W/cw (a CPU each) and at most ncpu/(cw+ct) (all CPUs).
        printf "   bound, %d CPUs for the lab alone:", ncpu
        for (w = 1; w <= 2; w++) {
            k = "workers " w; cw = c[k] / hz / p[k]; ct = (l[k] - c[k]) / hz / p[k]
            a = ncpu / (cw + ct); bd[w] = (w / cw < a ? w / cw : a)
            printf " %s: censor %.1f + traffic %.1f us per packet, <= %.0f packets/s;", k, 1e6 * cw, 1e6 * ct, bd[w]
        }
        printf " wall scaling <= %.2fx\n", bd[2] / bd[1]
        printf "   scaling 2/1: wall %.2fx, per censor-CPU-second %.2fx, per busiest-worker second %.2fx (target >= 1.7); load average %s\n",
               wall[2] / wall[1], cpu[2] / cpu[1], bus[2] / bus[1], la
    }' "$dir/w-sums"
