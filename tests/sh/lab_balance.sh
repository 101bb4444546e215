#!/usr/bin/env bash
# Two workers balanced per flow (slowdown run --workers 2 --balance flow; the
# lab's censor hooks mangle PREROUTING):
# connections from ONE client address to one server spread over both queues
# (the kernel's address-pair balance would put them all in one), every
# connection still completes, listed names are still throttled, the workers
# count every packet the kernel queued, and stopping removes the balance
# chain with the rest.
. "$(dirname "$0")/lablib.bash"
need_lab

id=bal$$
lab_up "$id" --preset tw21-initial --run-arg=--workers=2 --run-arg=--balance=flow
pid=$(censor_pid "$id")
[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || fail "no censor process"

"$SD_BIN" lab exec "$id" censor -- iptables-legacy -t mangle -S SLOWDOWN-0-lb | grep -q -- "-m bpf --bytecode" ||
    fail "no balance chain with a bpf match"
# 16 connections from the client's one address (fresh ports each): with 2 queues, all 16 in
# one queue by chance has odds 2^-15.
for i in $(seq 16); do
    out=$(fetch "$id" --plain --bytes 20000 203.0.113.2)
    [ "$(json_str end <<<"$out")" = "done" ] || fail "fetch $i: $out"
done
q0=$(queue_seq "$id" 0) q1=$(queue_seq "$id" 1)
[ "${q0:-0}" -gt 0 ] && [ "${q1:-0}" -gt 0 ] || fail "one client address: queue 0 got ${q0:-none}, queue 1 ${q1:-none}"

# A listed name is still throttled (the default rules: its flow stays queued, in one worker).
out=$(fetch "$id" --sni twitter.com --seconds 4 203.0.113.2)
kbps=$(json_num kbps <<<"$out")
[ -n "$kbps" ] && lt "$kbps" 1000 || fail "twitter.com not throttled: $out"

expect_workers_counted "$id" "$pid"

kill -TERM "$pid"
for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
for t in iptables-legacy ip6tables-legacy; do
    for tab in filter mangle; do
        left=$("$SD_BIN" lab exec "$id" censor -- "$t" -t "$tab" -S 2>/dev/null | grep -c SLOWDOWN)
        [ "$left" = 0 ] || fail "$t -t $tab: $left SLOWDOWN rules or chains left after stop"
    done
done
echo "ok: one client address, queue 0 $q0 packets, queue 1 $q1 packets; twitter.com at $kbps kbit/s"
