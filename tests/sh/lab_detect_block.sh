#!/usr/bin/env bash
# slowdown detect against the later TSPU behaviours: tw22-block (SNI-I, the
# server's answer replaced by RST) gives blocked/rst; cdn25-16k (the server's
# address frozen after 16 KB per connection, every SNI alike) gives a
# blocked/freeze download after 16-20 KB of TCP payload, scope all, and an
# upload that is not throttled; yt24-loss (random loss, no fixed rate) gives
# throttled/loss.
. "$(dirname "$0")/lablib.bash"
need_lab

# verdict LABEL OUT DIRECTION VERDICT KIND
expect() {
    local line
    line=$(echo "$2" | grep "\"direction\":\"$3\"")
    [ "$(echo "$line" | json_str verdict)" = "$4" ] || fail "$1 $3: expected $4: $line"
    [ -z "$5" ] || [ "$(echo "$line" | json_str kind)" = "$5" ] || fail "$1 $3: expected kind $5: $line"
    echo "ok: $1 $3: $4${5:+ ($5)}"
}

id=dtb$$
lab_up "$id" --preset tw22-block
out=$("$SD_BIN" detect --lab "$id" --json twitter.com)
expect tw22-block "$out" down blocked rst
expect tw22-block "$out" up blocked rst
"$SD_BIN" lab down "$id" || fail "lab down"

pol=$(mktemp --suffix=.pol)
trap 'rm -f "$pol"; cleanup' EXIT
echo "ips cdn25 203.0.113.0/24 2001:db8:2::/64" >"$pol"
id=dcd$$
lab_up "$id" --preset cdn25-16k --policy "$pol"
out=$("$SD_BIN" detect --lab "$id" --json example.com)
expect cdn25-16k "$out" down blocked freeze
line=$(echo "$out" | grep '"direction":"down"')
[ "$(echo "$line" | json_str scope)" = all ] || fail "cdn25-16k: the freeze concerns every flow: $line"
n=$(echo "$line" | json_num blocked_after_bytes)
[ "$n" -ge 16384 ] && [ "$n" -le 20480 ] || fail "cdn25-16k: frozen after $n bytes, expected 16-20 KB"
echo "ok: cdn25-16k froze after $n bytes"
expect cdn25-16k "$out" up not_throttled ""
"$SD_BIN" lab down "$id" || fail "lab down"

id=dyt$$
lab_up "$id" --preset yt24-loss
out=$("$SD_BIN" detect --lab "$id" --json rr4---sn-abc.googlevideo.com)
expect yt24-loss "$out" down throttled loss
expect yt24-loss "$out" up throttled loss
"$SD_BIN" lab down "$id" || fail "lab down"
assert_gone "$id"
echo PASS
