#!/usr/bin/env bash
# slowdown run --bypass ipset in the lab (no connection tracking): listed SNIs
# are still policed to ~130 kbit/s over IPv4 and IPv6, an unlisted SNI runs at
# Mbit/s and its flow is an element of the queue's set (client address,
# client port, server address) while conntrack holds no entry at all; a new
# connection from a client port whose element is still there (another server
# port, the same server) is inspected again and throttled; and stopping the
# censor removes the rules and destroys the sets.
. "$(dirname "$0")/lablib.bash"
need_lab
command -v ipset >/dev/null || skip "needs ipset (scripts/deps.sh installs it)"

id=byp$$
lab_up "$id" --preset tw21-initial --run-arg=--bypass --run-arg=ipset
in_censor() { "$SD_BIN" lab exec "$id" censor -- "$@"; }
members() { in_censor ipset list "$1" | sed -n '/^Members:/,$p' | tail -n +2; }

expect_throttled "twitter.com (v4)" "$(fetch "$id" --sni twitter.com --seconds 3 203.0.113.2)"
expect_throttled "abs.twimg.com (v6)" "$(fetch "$id" --sni abs.twimg.com --seconds 3 2001:db8:2::2)"
expect_fast "example.org (v6)" "$(fetch "$id" --sni example.org --seconds 2 2001:db8:2::2)"
expect_fast "plain, client port 40000" "$(fetch "$id" --plain --src-port 40000 --seconds 2 203.0.113.2)"

# The settled flows are elements; the throttled ones are not.
m4=$(members SLOWDOWN-0-v4)
echo "$m4" | grep -q "^192.0.2.2,tcp:40000,203.0.113.2 timeout" || fail "no element for the settled flow: $m4"
[ "$(echo "$m4" | grep -c .)" = 1 ] || fail "v4 set: expected only the settled flow: $m4"
m6=$(members SLOWDOWN-0-v6)
echo "$m6" | grep -q "^2001:db8:1::2,tcp:[0-9]*,2001:db8:2::2 timeout" || fail "no v6 element: $m6"
[ "$(echo "$m6" | grep -c .)" = 1 ] || fail "v6 set: expected only the settled flow: $m6"
# No conntrack: no rule of ours needs it, so the kernel tracks nothing here.
n=$(in_censor cat /proc/net/nf_conntrack | wc -l)
[ "$n" = 0 ] || fail "conntrack holds $n entries with --bypass ipset"
# The settled flow's packets passed by the set, not the queue.
hits=$(in_censor iptables-legacy -w -t mangle -L SLOWDOWN-0 -v -n -x | awk '/match-set/ { s += $1 } END { print s + 0 }')
lt 1000 "$hits" || fail "the set rules passed only $hits packets"
echo "ok: settled flows are elements ($hits packets passed by them), conntrack is empty"

# Port reuse: the same client port to a listed name on another server port.
# Its SYN is queued and deletes the element, so the ClientHello is inspected.
expect_throttled "twitter.com from client port 40000" \
    "$(fetch "$id" --sni twitter.com --src-port 40000 --seconds 3 203.0.113.2)"
members SLOWDOWN-0-v4 | grep -q ",tcp:40000," && fail "the element of port 40000 is still there"

# Stopping the censor takes the rules and the sets away.
kill -TERM "$(censor_pid "$id")"
for _ in $(seq 50); do
    in_censor ipset list -n 2>/dev/null | grep -q SLOWDOWN || break
    sleep 0.1
done
left=$(in_censor ipset list -n 2>/dev/null)
[ -z "$left" ] || fail "sets left after the censor stopped: $left"
in_censor iptables-legacy -w -t mangle -S | grep -q SLOWDOWN && fail "rules left after the censor stopped"

"$SD_BIN" lab down "$id" || fail "lab down"
assert_gone "$id"
echo PASS
