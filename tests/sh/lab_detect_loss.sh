#!/usr/bin/env bash
# slowdown detect against yt24-loss (googlevideo, July 2024: random drops
# aimed at a target, no fixed rate): throttled, kind loss, in both
# directions; a 20 ms path, as the lab's bare RTT lets TCP reach 10-18 Mbit/s
# through the loss action, too near a tenth of the controls' 200 Mbit/s cap.
. "$(dirname "$0")/lablib.bash"
need_lab

# expect LABEL OUT DIRECTION VERDICT KIND: the line of DIRECTION has VERDICT (and KIND unless "")
expect() {
    local line
    line=$(echo "$2" | grep "\"direction\":\"$3\"")
    [ "$(echo "$line" | json_str verdict)" = "$4" ] || fail "$1 $3: expected $4: $line"
    [ -z "$5" ] || [ "$(echo "$line" | json_str kind)" = "$5" ] || fail "$1 $3: expected kind $5: $line"
    echo "ok: $1 $3: $4${5:+ ($5)}"
}

id=dyt$$
lab_up "$id" --preset yt24-loss --rtt 20
out=$("$SD_BIN" detect --lab "$id" --json rr4---sn-abc.googlevideo.com)
expect yt24-loss "$out" down throttled loss
expect yt24-loss "$out" up throttled loss
"$SD_BIN" lab down "$id" || fail "lab down"
assert_gone "$id"
echo PASS
