#!/usr/bin/env bash
# Issue 9: policy reloads under load drop no packet. With every packet queued
# (--queue-packets 0) and no fail-open (--fail-closed: a packet the censor
# does not take in time is dropped and counted by the kernel), a throttled
# and an unthrottled transfer run while the policy file is rewritten and
# SIGHUP sent every 0.1 s. Afterwards: the kernel dropped nothing on the queue
# (queue_dropped, user_dropped), the censor received at least as many packets
# as met the NFQUEUE rules, the unthrottled flow lost no packet, the throttled one
# stayed throttled across the reloads, and the reloads did happen.
. "$(dirname "$0")/lablib.bash"
need_lab

dir=$(mktemp -d)
trap 'cleanup; rm -rf "$dir"' EXIT
pol=$dir/load.pol
events=$dir/events.json
policy() { # the same decisions, a different text each time
    printf '# version %s\nnames target alpha.test\nnames other gamma%s.test\n' "$1" "$1" >"$pol"
    printf 'rule target when sni in target then throttle rate=128kbit burst=16000\n' >>"$pol"
    printf 'rule other when sni in other then drop\n' >>"$pol"
}
policy 0

id=rll$$
# 20 Mbit/s: load the censor (an ASan build on a shared machine) without overrunning it.
lab_up "$id" --policy "$pol" --shape-kbit 20000 --run-arg=--queue-packets --run-arg=0 --run-arg=--fail-closed \
    --run-arg=--events --run-arg="$events"
pid=$(censor_pid "$id")
log=/run/slowdown/labs/$id/censor.log
incensor() { "$SD_BIN" lab exec "$id" censor -- "$@"; }

fetch "$id" --sni alpha.test --seconds 8 203.0.113.2 >"$dir/slow" &
slow=$!
fetch "$id" --sni beta.test --seconds 8 203.0.113.2 >"$dir/fast" &
fast=$!
sleep 0.5
sent=0
for i in $(seq 1 60); do
    policy "$i"
    kill -HUP "$pid" || fail "the censor died during the reloads"
    sent=$((sent + 1))
    sleep 0.1
done
wait $slow $fast
sleep 1 # the last FINs and ACKs
expect_throttled "alpha.test across $sent reloads" "$(cat "$dir/slow")"
k=$(json_num kbps <"$dir/fast")
lt 5000 "$k" || fail "beta.test: $k kbit/s, expected about 20000: $(cat "$dir/fast")"
echo "ok: beta.test not throttled, $k kbit/s"

reloads=$(grep -c "policy reloaded" "$log")
[ "$reloads" -ge 20 ] || fail "only $reloads reloads of $sent SIGHUPs: $(grep -i reload "$log" | tail -3)"
grep -q "reload .* failed" "$log" && fail "a reload failed: $(grep 'failed' "$log" | head -2)"

# The kernel's view of queue 0 in the censor's namespace, and the rules' packet counters.
read -r _ _ _ _ _ qdrop udrop _ < <(incensor cat /proc/net/netfilter/nfnetlink_queue | awk '$1 == 0')
[ "$qdrop" = 0 ] && [ "$udrop" = 0 ] || fail "the kernel dropped packets on the queue: queue_dropped $qdrop user_dropped $udrop"
queued=0
for t in iptables-legacy ip6tables-legacy; do
    n=$(incensor "$t" -w -t mangle -L SLOWDOWN-0 -v -x -n | awk '/NFQUEUE/ { s += $1 } END { print s + 0 }')
    queued=$((queued + n))
done
kill -USR1 "$pid"
wait_for "$log" "slowdown run: packets" 5 || fail "no statistics on SIGUSR1"
seen=$(sed -n 's/^slowdown run: packets \([0-9]*\) .*/\1/p' "$log" | tail -1)
# GSO packets are queued as their segments: the censor may receive more than the rules counted, never fewer.
[ "$seen" -ge "$queued" ] || fail "$queued packets met the NFQUEUE rules but the censor received $seen"
echo "ok: $sent SIGHUPs, $reloads reloads; $seen packets received for $queued queued, none dropped by the kernel"

kill -TERM "$pid"
for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$pid" 2>/dev/null && fail "the censor did not exit within 10 s of SIGTERM"
# The unthrottled transfer's flow result: packets both ways, none dropped.
fid=$(grep '"sni":"beta.test"' "$events" | head -1 | json_num flow_id)
[ -n "$fid" ] || fail "no beta.test in the event log"
line=$(grep "\"flow_id\":$fid,\"event_type\":\"flow\"" "$events")
[ -n "$line" ] || fail "no result for the unthrottled flow $fid"
echo "$line" | grep -q '"dropped_toserver":0,"dropped_toclient":0' || fail "the unthrottled flow lost packets: $line"
echo "ok: the unthrottled flow ($(echo "$line" | json_num pkts_toclient) packets to the client) lost none"

"$SD_BIN" lab down "$id" || fail "lab down"
assert_gone "$id"
echo PASS
