#!/usr/bin/env bash
# The lab always cleans up: a set-up that fails half way removes what it
# built; a namespace of the lab's name that the lab did not create is left
# alone; 'lab down' of an unknown id touches nothing; --rtt adds delay and
# --shape-kbit shapes.
. "$(dirname "$0")/lablib.bash"
need_lab

# The censor fails at start (unknown preset) after namespaces and server exist.
id=cf$$
out=$("$SD_BIN" lab up --name "$id" --quiet --preset no-such-preset 2>&1) && fail "lab up should have failed"
echo "$out" | grep -q "censor" || fail "the failure does not name the censor: $out"
assert_gone "$id"
echo "ok: failed set-up cleaned up ($out)"

# A namespace of our name that the lab did not make.
id=cn$$
ip netns add "sd-$id-client" || fail "cannot make the test namespace"
out=$("$SD_BIN" lab up --name "$id" --quiet 2>&1) && fail "lab up should refuse"
ip netns list | grep -q "^sd-$id-client" || { fail "the foreign namespace was removed"; }
ip netns del "sd-$id-client"
assert_gone "$id"
echo "ok: foreign namespace left alone ($out)"

# 'lab up' killed at various points of its set-up: 'lab down' still removes everything.
id=kl$$
for delay in 0.02 0.05 0.08 0.12 0.2; do
    "$SD_BIN" lab up --name "$id" --quiet >/dev/null 2>&1 &
    pid=$!
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    if [ -e "/run/slowdown/labs/$id" ]; then
        "$SD_BIN" lab down "$id" || fail "lab down after 'lab up' was killed at $delay s"
    fi
    assert_gone "$id"
done
echo "ok: set-ups killed part way are removed by lab down"

out=$("$SD_BIN" lab down "nolab$$" 2>&1) && fail "lab down of an unknown id should fail"
echo "$out" | grep -q "nothing touched" || fail "lab down unknown: $out"

# Delay line: +60 ms round trip; the TCP handshake shows it.
id=rt$$
lab_up "$id" --no-censor --rtt 60
line=$(fetch "$id" --sni example.org --seconds 1 203.0.113.2)
c=$(echo "$line" | json_num connect_ms)
lt 55 "$c" && lt "$c" 200 || fail "connect took $c ms with --rtt 60"
echo "ok: --rtt 60 gives a $c ms TCP handshake"
"$SD_BIN" lab down "$id" || fail "lab down"
assert_gone "$id"

# HTB shaping of everything, no censor: a smooth 4 Mbit/s.
id=sh$$
lab_up "$id" --no-censor --shape-kbit 4000
k=$(fetch "$id" --sni example.org --seconds 3 203.0.113.2 | json_num kbps)
lt 2500 "$k" && lt "$k" 4500 || fail "shaped to 4000 kbit/s, measured $k"
echo "ok: --shape-kbit 4000 gives $k kbit/s"
"$SD_BIN" lab down "$id" || fail "lab down"
assert_gone "$id"
echo PASS
