#!/usr/bin/env bash
# Issue 9: a running censor keeps only the capabilities it needs. Every thread
# of `slowdown run` (main, worker, metrics) has exactly CAP_NET_ADMIN and
# CAP_NET_RAW in its effective, permitted and bounding sets, nothing
# inheritable or ambient, and no_new_privs; with that it still throttles,
# reloads its policy on SIGHUP, and on SIGTERM removes its iptables rules and
# writes the result of every flow it tracked, a transfer still running
# included (the event log's "flow" lines, reason "shutdown"). The lab's
# `slowdown serve` holds no capability at all once it listens.
. "$(dirname "$0")/lablib.bash"
need_lab

dir=$(mktemp -d)
trap 'cleanup; rm -rf "$dir"' EXIT
pol=$dir/privs.pol
events=$dir/events.json
printf 'names target alpha.test\nrule target when sni in target then throttle rate=128kbit burst=16000\n' >"$pol"

id=pv$$
lab_up "$id" --policy "$pol" --run-arg=--events --run-arg="$events" --run-arg=--metrics --run-arg=127.0.0.1:9470
pid=$(censor_pid "$id")
log=/run/slowdown/labs/$id/censor.log
grep -q "capabilities dropped; kept cap_net_admin,cap_net_raw (bounding set too), no_new_privs set" "$log" ||
    fail "no drop reported: $(cat "$log")"

# CAP_NET_ADMIN (12) and CAP_NET_RAW (13).
kept=0000000000003000
threads=0
for st in /proc/"$pid"/task/*/status; do
    threads=$((threads + 1))
    f() { awk -v k="$1:" '$1 == k { print $2 }' "$st"; }
    [ "$(f CapEff)" = $kept ] || fail "$st: CapEff $(f CapEff), expected $kept"
    [ "$(f CapPrm)" = $kept ] || fail "$st: CapPrm $(f CapPrm), expected $kept"
    [ "$(f CapBnd)" = $kept ] || fail "$st: CapBnd $(f CapBnd), expected $kept"
    [ "$(f CapInh)" = 0000000000000000 ] || fail "$st: CapInh $(f CapInh)"
    [ "$(f CapAmb)" = 0000000000000000 ] || fail "$st: CapAmb $(f CapAmb)"
    [ "$(f NoNewPrivs)" = 1 ] || fail "$st: NoNewPrivs $(f NoNewPrivs)"
done
[ $threads -ge 3 ] || fail "expected the main, worker and metrics threads, found $threads"
echo "ok: $threads threads of the censor hold $kept only, no_new_privs"

# The measurement server keeps nothing once its listeners are bound.
spid=$(sed -n 's/^server_pid //p' "/run/slowdown/labs/$id/state")
for k in CapEff CapPrm CapBnd CapInh CapAmb; do
    v=$(awk -v k="$k:" '$1 == k { print $2 }' /proc/"$spid"/status)
    [ "$v" = 0000000000000000 ] || fail "slowdown serve: $k $v, expected none"
done
grep -q '^NoNewPrivs:[[:space:]]*1$' /proc/"$spid"/status || fail "slowdown serve: no no_new_privs"
echo "ok: the server holds no capability"

expect_throttled "alpha.test" "$(fetch "$id" --sni alpha.test --seconds 3 203.0.113.2)"
expect_fast "beta.test" "$(fetch "$id" --sni beta.test --seconds 2 203.0.113.2)"

printf 'names target beta.test\nrule target when sni in target then throttle rate=128kbit burst=16000\n' >"$pol"
kill -HUP "$pid"
wait_for "$log" "policy reloaded" 5 || fail "no reload: $(tail -3 "$log")"
expect_fast "alpha.test after SIGHUP" "$(fetch "$id" --sni alpha.test --seconds 2 203.0.113.2)"
expect_throttled "beta.test after SIGHUP" "$(fetch "$id" --sni beta.test --seconds 3 203.0.113.2)"

# SIGTERM in the middle of a throttled transfer.
fetch "$id" --sni beta.test --seconds 6 203.0.113.2 >"$dir/running" &
fpid=$!
sleep 2
kill -TERM "$pid"
for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$pid" 2>/dev/null && fail "the censor did not exit within 10 s of SIGTERM"
wait_for "$log" "slowdown run: packets" 1 || fail "no final statistics: $(tail -3 "$log")"
for t in iptables-legacy ip6tables-legacy; do
    n=$("$SD_BIN" lab exec "$id" censor -- "$t" -w -t mangle -S | grep -c SLOWDOWN)
    [ "$n" = 0 ] || fail "$t: $n SLOWDOWN rules left after SIGTERM"
done
echo "ok: SIGTERM removed every rule"
wait $fpid

starts=$(grep -c '"event_type":"flow_start"' "$events")
ends=$(grep -c '"event_type":"flow"' "$events")
[ "$starts" -ge 5 ] || fail "only $starts flows in the event log, expected the 5 transfers at least"
[ "$starts" = "$ends" ] || fail "$starts flows started but $ends results written"
grep '"event_type":"flow"' "$events" | grep '"reason":"shutdown"' | grep -q '"dropped_toclient":[1-9]' ||
    fail "no result for the throttled transfer cut by SIGTERM: $(grep '"reason":"shutdown"' "$events" | head -3)"
echo "ok: $ends of $starts flow results written, the running transfer's among them"

"$SD_BIN" lab down "$id" || fail "lab down"
assert_gone "$id"
echo PASS
