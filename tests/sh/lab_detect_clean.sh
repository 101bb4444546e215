#!/usr/bin/env bash
# slowdown detect where nothing targets a name: without a censor, and behind
# an HTB shaper that holds both directions of every flow to 1 Mbit/s (the
# Tele2 upload case of spec B8). Every name and direction must come out
# not_throttled. (bench/detect_fp.sh repeats this 20 times and counts.)
. "$(dirname "$0")/lablib.bash"
need_lab

expect_clean() {
    local label=$1 out=$2 line n=0
    while IFS= read -r line; do
        local v
        v=$(echo "$line" | json_str verdict)
        [ "$v" = not_throttled ] || fail "$label: $(echo "$line" | json_str name) $(echo "$line" | json_str direction): $v: $line"
        n=$((n + 1))
    done < <(echo "$out" | grep '"type":"measurement"')
    [ "$n" -gt 0 ] || fail "$label: no measurement"
    echo "ok: $label: $n measurements not throttled"
}

id=dcl$$
lab_up "$id" --no-censor
expect_clean "no censor" "$("$SD_BIN" detect --lab "$id" --json twitter.com example.org)"
"$SD_BIN" lab down "$id" || fail "lab down"

id=dsh$$
lab_up "$id" --no-censor --shape-kbit 1000
out=$("$SD_BIN" detect --lab "$id" --json twitter.com)
echo "$out" | sed -n 's/.*"evidence":"\([^"]*\)".*/  evidence: \1/p'
expect_clean "HTB 1 Mbit/s" "$out"
"$SD_BIN" lab down "$id" || fail "lab down"
assert_gone "$id"
echo PASS
