#!/usr/bin/env bash
# A censor killed with SIGKILL leaves traffic flowing (--queue-bypass,
# fail-open); the next 'slowdown run' removes the stale rules before adding
# its own; SIGTERM removes them all.
. "$(dirname "$0")/lablib.bash"
need_lab

id=fo$$
lab_up "$id" --preset tw21-initial
rules() { "$SD_BIN" lab exec "$id" censor -- "$1" -w -t mangle -S PREROUTING | grep -c 'SLOWDOWN-0'; }
expect_throttled "twitter.com with the censor" "$(fetch "$id" --sni twitter.com --seconds 3 203.0.113.2)"

kill -9 "$(censor_pid "$id")"
sleep 0.2
# The lab's censor hooks in0 and out0 (--iface in0,out0): one jump per interface.
[ "$(rules iptables-legacy)" = 2 ] || fail "the rules should still be there after SIGKILL"
expect_fast "example.org, censor dead" "$(fetch "$id" --sni example.org --seconds 2 203.0.113.2)"
expect_fast "twitter.com, censor dead" "$(fetch "$id" --sni twitter.com --seconds 2 203.0.113.2)"

ready=/run/slowdown/labs/$id/again.ready
log=/run/slowdown/labs/$id/again.log
"$SD_BIN" lab exec "$id" censor -- "$SD_BIN" run --preset tw21-initial --inside 192.0.2.0/24,2001:db8:1::/64 \
    --hook prerouting --ready-file "$ready" 2>"$log" &
pid=$!
wait_file "$ready" 10 || fail "the new censor did not start: $(cat "$log")"
grep -q "removed .* stale" "$log" || fail "stale rules not reported: $(cat "$log")"
[ "$(rules iptables-legacy)" = 1 ] || fail "IPv4: expected exactly one jump rule"
[ "$(rules ip6tables-legacy)" = 1 ] || fail "IPv6: expected exactly one jump rule"
expect_throttled "twitter.com, new censor" "$(fetch "$id" --sni twitter.com --seconds 3 203.0.113.2)"

kill -TERM "$pid"
wait "$pid" || fail "slowdown run exited with $?"
for t in iptables-legacy ip6tables-legacy; do
    n=$("$SD_BIN" lab exec "$id" censor -- "$t" -w -t mangle -S | grep -c SLOWDOWN)
    [ "$n" = 0 ] || fail "$t: $n SLOWDOWN rules left after SIGTERM"
done
"$SD_BIN" lab down "$id" || fail "lab down"
assert_gone "$id"
echo PASS
