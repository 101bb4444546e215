#!/usr/bin/env bash
# Two workers in the lab (slowdown run --workers 2, every packet queued):
# each worker thread is named after its queue (sd-queue-0, sd-queue-1), and
# both queues take traffic once the client talks from several addresses.
# The kernel's --queue-balance hashes the address pair, not the ports, so
# every connection from one client address lands in the same queue; the
# test adds client addresses until each queue has seen a connection (32
# addresses all in one queue: odds 2^-31) and checks the censor counted
# every packet the kernel queued.
. "$(dirname "$0")/lablib.bash"
need_lab

id=wrk$$
lab_up "$id" --preset tw21-initial --run-arg=--workers=2 --run-arg=--queue-packets=0
pid=$(censor_pid "$id")
[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || fail "no censor process"

names=$(cat /proc/"$pid"/task/*/comm | sort | tr '\n' ' ')
case $names in *"sd-queue-0 sd-queue-1 "*) ;; *) fail "worker threads not named sd-queue-0/1: $names" ;; esac

[ -n "$(queue_seq "$id" 0)" ] && [ -n "$(queue_seq "$id" 1)" ] || fail "queues 0 and 1 are not both bound"
for i in $(seq 10 41); do
    "$SD_BIN" lab exec "$id" client -- ip addr add "192.0.2.$i/24" dev eth0 || fail "cannot add 192.0.2.$i"
    out=$(fetch "$id" --plain --bytes 1000 --bind "192.0.2.$i" 203.0.113.2)
    [ "$(json_str end <<<"$out")" = "done" ] || fail "fetch from 192.0.2.$i: $out"
    [ "$(queue_seq "$id" 0)" -gt 0 ] && [ "$(queue_seq "$id" 1)" -gt 0 ] && break
done
q0=$(queue_seq "$id" 0) q1=$(queue_seq "$id" 1)
[ "$q0" -gt 0 ] && [ "$q1" -gt 0 ] || fail "a queue never received a packet: queue 0 $q0, queue 1 $q1"

expect_workers_counted "$id" "$pid"
echo "ok: queue 0 $q0 packets, queue 1 $q1 packets, threads $names"
