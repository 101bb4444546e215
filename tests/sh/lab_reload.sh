#!/usr/bin/env bash
# SIGHUP reloads the censor's policy for new flows; a policy with an error is
# reported as FILE:LINE:COL and the previous one stays in force.
. "$(dirname "$0")/lablib.bash"
need_lab

dir=$(mktemp -d)
trap 'cleanup; rm -rf "$dir"' EXIT
pol=$dir/reload.pol
printf 'names target alpha.test\nrule target when sni in target then throttle rate=128kbit burst=16000\n' >"$pol"

id=rl$$
lab_up "$id" --policy "$pol"
log=/run/slowdown/labs/$id/censor.log
expect_throttled "alpha.test before" "$(fetch "$id" --sni alpha.test --seconds 3 203.0.113.2)"
expect_fast "beta.test before" "$(fetch "$id" --sni beta.test --seconds 2 203.0.113.2)"

printf 'names target beta.test\nrule target when sni in target then throttle rate=128kbit burst=16000\n' >"$pol"
kill -HUP "$(censor_pid "$id")"
wait_for "$log" "policy reloaded" 5 || fail "no reload in $log"
expect_fast "alpha.test after" "$(fetch "$id" --sni alpha.test --seconds 2 203.0.113.2)"
expect_throttled "beta.test after" "$(fetch "$id" --sni beta.test --seconds 3 203.0.113.2)"

printf 'names target gamma.test\nrule target when sni in target then bogus-action\n' >"$pol"
kill -HUP "$(censor_pid "$id")"
wait_for "$log" "previous policy stays" 5 || fail "a broken policy was not refused: $(tail -3 "$log")"
grep -q "reload.pol:2:[0-9]*:" "$log" || fail "no FILE:LINE:COL in $(tail -3 "$log")"
kill -0 "$(censor_pid "$id")" || fail "the censor died on a bad policy"
expect_throttled "beta.test after a bad reload" "$(fetch "$id" --sni beta.test --seconds 3 203.0.113.2)"

"$SD_BIN" lab down "$id" || fail "lab down"
assert_gone "$id"
echo PASS
