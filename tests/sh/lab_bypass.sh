#!/usr/bin/env bash
# slowdown run --bypass bpf and --bypass ipset in the lab (no connection
# tracking): listed SNIs are still policed to ~130 kbit/s over IPv4 and IPv6,
# an unlisted SNI runs at Mbit/s and its flow is in the bypass (the map's
# elements of both directions, or the set's element: client address, client
# port, server address) while conntrack holds no entry at all; a new
# connection from a client port whose element is still there (another server
# port, the same server) is inspected again and throttled; and stopping the
# censor removes the rules, the sets and the pinned program and map (and
# 'lab down' those of a censor that was killed).
. "$(dirname "$0")/lablib.bash"
need_lab
command -v ipset >/dev/null || skip "needs ipset (scripts/deps.sh installs it)"
command -v bpftool >/dev/null || skip "needs bpftool (scripts/deps.sh installs it)"

for mode in bpf ipset; do
    id=b${mode:0:1}$$
    lab_up "$id" --preset tw21-initial --run-arg=--bypass --run-arg=$mode
    in_censor() { "$SD_BIN" lab exec "$id" censor -- "$@"; }
    members() { in_censor ipset list "$1" | sed -n '/^Members:/,$p' | tail -n +2; }
    pins() { ls /run/slowdown/bpf | grep "^net-$(stat -L -c %i "/proc/$(censor_pid "$id")/ns/net")-q-0-"; }
    # The map's keys as "src sport dst dport" (bpftool prints the key's fields).
    map_keys() {
        bpftool -j map dump pinned "/run/slowdown/bpf/$1" | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    k = e["formatted"]["key"]
    p = lambda v: (v & 0xff) << 8 | v >> 8 # network order, read as little-endian
    print(".".join(map(str, k["src"][:4])), p(k["sport"]), ".".join(map(str, k["dst"][:4])), p(k["dport"]))'
    }

    expect_throttled "$mode: twitter.com (v4)" "$(fetch "$id" --sni twitter.com --seconds 3 203.0.113.2)"
    expect_throttled "$mode: abs.twimg.com (v6)" "$(fetch "$id" --sni abs.twimg.com --seconds 3 2001:db8:2::2)"
    expect_fast "$mode: example.org (v6)" "$(fetch "$id" --sni example.org --seconds 2 2001:db8:2::2)"
    expect_fast "$mode: plain, client port 40000" "$(fetch "$id" --plain --src-port 40000 --seconds 2 203.0.113.2)"

    # The settled flows are in the bypass; the throttled ones are not.
    if [ $mode = ipset ]; then
        m4=$(members SLOWDOWN-0-v4)
        echo "$m4" | grep -q "^192.0.2.2,tcp:40000,203.0.113.2 timeout" || fail "no element for the settled flow: $m4"
        [ "$(echo "$m4" | grep -c .)" = 1 ] || fail "v4 set: expected only the settled flow: $m4"
        m6=$(members SLOWDOWN-0-v6)
        echo "$m6" | grep -q "^2001:db8:1::2,tcp:[0-9]*,2001:db8:2::2 timeout" || fail "no v6 element: $m6"
        [ "$(echo "$m6" | grep -c .)" = 1 ] || fail "v6 set: expected only the settled flow: $m6"
        chain_hits='/match-set/'
    else
        [ "$(pins | wc -l)" = 2 ] || fail "expected the program and the map pinned: $(ls /run/slowdown/bpf)"
        map=$(pins | grep -- -map)
        keys=$(map_keys "$map")
        echo "$keys" | grep -qx "192.0.2.2 40000 203.0.113.2 80" || fail "no client-to-server element: $keys"
        echo "$keys" | grep -qx "203.0.113.2 80 192.0.2.2 40000" || fail "no server-to-client element: $keys"
        # Two per settled flow (v4 plain, v6 example.org), none for the throttled ones.
        [ "$(echo "$keys" | grep -c .)" = 4 ] || fail "expected 4 elements: $keys"
        chain_hits='/match bpf/'
    fi
    # No conntrack: no rule of ours needs it, so the kernel tracks nothing here.
    n=$(in_censor cat /proc/net/nf_conntrack | wc -l)
    [ "$n" = 0 ] || fail "$mode: conntrack holds $n entries"
    # The settled flows' packets passed by the bypass, not the queue.
    hits=$(in_censor iptables-legacy -w -t mangle -L SLOWDOWN-0 -v -n -x | awk "$chain_hits"' { s += $1 } END { print s + 0 }')
    lt 1000 "$hits" || fail "$mode: the bypass passed only $hits packets"
    echo "ok: $mode: settled flows are in the bypass ($hits packets passed by it), conntrack is empty"

    # Port reuse: the same client port to a listed name on another server port.
    # Its SYN is queued and deletes the element(s), so the ClientHello is inspected.
    expect_throttled "$mode: twitter.com from client port 40000" \
        "$(fetch "$id" --sni twitter.com --src-port 40000 --seconds 3 203.0.113.2)"
    if [ $mode = ipset ]; then
        members SLOWDOWN-0-v4 | grep -q ",tcp:40000," && fail "the element of port 40000 is still there"
    fi

    # Stopping the censor takes the rules, sets and pins away.
    ns=$(stat -L -c %i "/proc/$(censor_pid "$id")/ns/net")
    kill -TERM "$(censor_pid "$id")"
    for _ in $(seq 50); do
        in_censor iptables-legacy -w -t mangle -S | grep -q SLOWDOWN || break
        sleep 0.1
    done
    sleep 0.5
    in_censor iptables-legacy -w -t mangle -S | grep -q SLOWDOWN && fail "$mode: rules left after the censor stopped"
    left=$(in_censor ipset list -n 2>/dev/null)
    [ -z "$left" ] || fail "$mode: sets left after the censor stopped: $left"
    ls /run/slowdown/bpf 2>/dev/null | grep -q "^net-$ns-" && fail "$mode: pins left after the censor stopped"

    "$SD_BIN" lab down "$id" || fail "lab down"
    assert_gone "$id"
done

# A censor killed outright cannot unpin: 'lab down' removes its namespace's pins.
id=bk$$
lab_up "$id" --preset tw21-initial --run-arg=--bypass --run-arg=bpf
ns=$(stat -L -c %i "/proc/$(censor_pid "$id")/ns/net")
kill -KILL "$(censor_pid "$id")"
[ "$(ls /run/slowdown/bpf | grep -c "^net-$ns-")" = 2 ] || fail "expected the killed censor's two pins"
"$SD_BIN" lab down "$id" || fail "lab down"
ls /run/slowdown/bpf | grep -q "^net-$ns-" && fail "lab down left the killed censor's pins"
echo "ok: lab down removed the pins of a killed censor"
echo PASS
