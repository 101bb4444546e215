#!/usr/bin/env bash
# slowdown detect against preset tw21-exact (the 2021 policer, 128 kbit/s per
# direction, counting IP bytes): twitter.com is throttled, kind policing, with
# a rate estimate within 15% of 128 kbit/s in both directions; example.org is
# not throttled; a default run takes at most 20 s; the SVG plot is written.
. "$(dirname "$0")/lablib.bash"
need_lab

id=dtw$$
lab_up "$id" --preset tw21-exact
svg=$(mktemp --suffix=.svg)
trap 'rm -f "$svg"; cleanup' EXIT

t0=$(date +%s.%N)
out=$("$SD_BIN" detect --lab "$id" --json --svg "$svg" twitter.com) || fail "detect twitter.com"
t1=$(date +%s.%N)
echo "$out"
lt "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" 20 || fail "a default run took more than 20 s"
for dir in down up; do
    line=$(echo "$out" | grep "\"direction\":\"$dir\"")
    [ "$(echo "$line" | json_str verdict)" = throttled ] || fail "twitter.com $dir: not throttled: $line"
    [ "$(echo "$line" | json_str kind)" = policing ] || fail "twitter.com $dir: kind is not policing: $line"
    est=$(echo "$line" | json_num rate_estimate_kbps)
    lt 108.8 "$est" && lt "$est" 147.2 || fail "twitter.com $dir: rate estimate $est kbit/s, not within 15% of 128"
    echo "ok: twitter.com $dir throttled (policing), rate ~$est kbit/s"
done
grep -q '<polyline' "$svg" && grep -q '</svg>' "$svg" || fail "no plot in $svg"
[ "$(grep -c '<polyline' "$svg")" = 6 ] || fail "the plot should have 6 lines (A, B, C x 2 directions)"

out=$("$SD_BIN" detect --lab "$id" --json example.org) || fail "detect example.org"
echo "$out"
for dir in down up; do
    line=$(echo "$out" | grep "\"direction\":\"$dir\"")
    [ "$(echo "$line" | json_str verdict)" = not_throttled ] || fail "example.org $dir: $line"
    echo "ok: example.org $dir not throttled"
done
"$SD_BIN" lab down "$id" || fail "lab down"
assert_gone "$id"
echo PASS
