#!/usr/bin/env bash
# slowdown detect --trigger --hops against tw21-exact: the byte search finds
# that the censor needs the SNI's host bytes (all of "twitter.com") and the
# record's type, but not the random; the TTL-limited ClientHello puts the box
# at hop 1 (the lab's censor is the client's first router and inspects in
# PREROUTING, where a TTL-1 packet still arrives).
. "$(dirname "$0")/lablib.bash"
need_lab

id=dlo$$
lab_up "$id" --preset tw21-exact
out=$("$SD_BIN" detect --lab "$id" --json --down --seconds 6 --warmup 2 --trigger --hops 3 twitter.com) ||
    fail "detect --trigger --hops"
echo "$out" | cut -c1-300
echo "$out" | grep -q '"type":"measurement".*"verdict":"throttled"' || fail "not throttled"
trig=$(echo "$out" | grep '"type":"trigger"')
echo "$trig" | grep -q '"baseline":true' || fail "the plain ClientHello did not trigger: $trig"
echo "$trig" | grep -q '"inverted":false' || fail "the inverted ClientHello triggered: $trig"
echo "$trig" | grep -q '{"offset":[0-9]*,"length":11,"resolved":true,"fields":"server_name host","bytes":"twitter.com"}' ||
    fail "the host bytes are not found as the trigger: $trig"
echo "$trig" | grep -q '"fields":"record type"' || fail "the record type should matter: $trig"
echo "$trig" | grep -q '"fields":"random"' && fail "the random should not matter: $trig"
echo "ok: trigger localised to the SNI host (and the structure the censor walks)"
hops=$(echo "$out" | grep '"type":"hops"')
echo "$hops"
[ "$(echo "$hops" | json_num hop)" = 1 ] || fail "hop: $hops"
echo "ok: censor at hop 1"
"$SD_BIN" lab down "$id" || fail "lab down"
assert_gone "$id"
echo PASS
