#!/usr/bin/env bash
# Real TLS through the lab with preset tw21-initial: listed SNIs are policed to
# ~130 kbit/s in both directions and over IPv4 and IPv6, an unlisted SNI runs
# at Mbit/s; the replay pair (a plain-TCP ClientHello, and the same bytes
# inverted) splits the same way; a ClientHello sent by the server triggers
# too (spec B5); and 'lab down' leaves nothing behind.
. "$(dirname "$0")/lablib.bash"
need_lab

id=thr$$
lab_up "$id" --preset tw21-initial
"$SD_BIN" lab list | grep -q "^$id .*up .*tw21-initial.*censor running, server running" || fail "lab list"

expect_throttled "twitter.com (v4, down)" "$(fetch "$id" --sni twitter.com --seconds 4 203.0.113.2)"
expect_fast "example.org (v4, down)" "$(fetch "$id" --sni example.org --seconds 2 203.0.113.2)"
expect_throttled "abs.twimg.com (v6, down)" "$(fetch "$id" --sni abs.twimg.com --seconds 3 2001:db8:2::2)"
expect_fast "example.org (v6, down)" "$(fetch "$id" --sni example.org --seconds 2 2001:db8:2::2)"
expect_throttled "twitter.com (v4, up)" "$(fetch "$id" --sni twitter.com --up --seconds 3 203.0.113.2)"
expect_throttled "plain ClientHello twitter.com" "$(fetch "$id" --plain --hello twitter.com --seconds 3 203.0.113.2)"
expect_fast "the same ClientHello inverted" "$(fetch "$id" --plain --hello twitter.com --invert --seconds 2 203.0.113.2)"

"$SD_BIN" lab down "$id" || fail "lab down"
assert_gone "$id"

# B5: the server sends the ClientHello first, on a connection the client opened.
id=b5$$
lab_up "$id" --preset tw21-initial --serve-arg=--hello-first --serve-arg=twitter.com
expect_throttled "server-sent ClientHello" "$(fetch "$id" --plain --seconds 3 203.0.113.2)"
"$SD_BIN" lab down "$id" || fail "lab down"
assert_gone "$id"
echo PASS
