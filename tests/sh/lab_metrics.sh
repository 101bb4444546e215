#!/usr/bin/env bash
# Metrics of a censor in the lab (issue 10): scraped with curl over HTTP
# (text exposition 0.0.4) while a throttled download runs, the counters of
# the throttling rule move (packets, bytes, drops, flows), the untouched flow
# counts under no rule, and a settled flow is marked and leaves the queue.
# The event log of the same run has the decision lines. promtool checks the
# exposition too when it is installed.
# Not yet reliable (see the open issue): runs only with SD_LAB_EXTRA=1.
[ "${SD_LAB_EXTRA:-0}" = 1 ] || { echo "skipped: set SD_LAB_EXTRA=1 (known mismatches, issue open)"; exit 77; }
. "$(dirname "$0")/lablib.bash"
need_lab
command -v curl >/dev/null || skip "needs curl"

dir=$(mktemp -d)
trap 'cleanup; rm -rf "$dir"' EXIT
id=met$$
events=$dir/events.json
lab_up "$id" --preset tw21-initial --run-arg=--metrics --run-arg=127.0.0.1:9469 --run-arg=--events --run-arg="$events"

scrape() { ip netns exec "sd-$id-censor" curl -sf --max-time 5 http://127.0.0.1:9469/metrics; }
# metric NAME_WITH_LABELS < exposition: its value (0 when absent)
metric() { awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }'; }
rule='{rule="tw21",action="throttle"}'

scrape >"$dir/m0" || fail "no metrics at 127.0.0.1:9469 in the censor namespace"
grep -q '^# TYPE slowdown_rule_packets_total counter$' "$dir/m0" || fail "no TYPE line: $(head -5 "$dir/m0")"
[ "$(metric slowdown_policy_generation <"$dir/m0")" = 1 ] || fail "policy generation is not 1"
grep -q '^slowdown_policy_info{name="tw21-initial"} 1$' "$dir/m0" || fail "no policy_info for tw21-initial"
p0=$(metric "slowdown_rule_packets_total$rule" <"$dir/m0")

# A throttled download in the background; scrape twice while it runs.
fetch "$id" --sni abs.twimg.com --seconds 5 203.0.113.2 >"$dir/fetch" &
fpid=$!
sleep 2
scrape >"$dir/m1" || fail "scrape during the download"
sleep 2
scrape >"$dir/m2" || fail "second scrape during the download"
wait $fpid
expect_throttled "abs.twimg.com" "$(cat "$dir/fetch")"

p1=$(metric "slowdown_rule_packets_total$rule" <"$dir/m1")
p2=$(metric "slowdown_rule_packets_total$rule" <"$dir/m2")
b1=$(metric "slowdown_rule_bytes_total$rule" <"$dir/m1")
b2=$(metric "slowdown_rule_bytes_total$rule" <"$dir/m2")
d1=$(metric "slowdown_rule_dropped_total$rule" <"$dir/m1")
d2=$(metric "slowdown_rule_dropped_total$rule" <"$dir/m2")
f2=$(metric "slowdown_rule_flows_total$rule" <"$dir/m2")
echo "rule tw21: packets $p0 -> $p1 -> $p2, bytes $b1 -> $b2, dropped $d1 -> $d2, flows $f2"
lt "$p0" "$p1" && lt "$p1" "$p2" || fail "rule packets did not move: $p0 $p1 $p2"
lt "$b1" "$b2" || fail "rule bytes did not move: $b1 $b2"
lt 0 "$d1" && lt "$d1" "$d2" || fail "drops did not move while throttled: $d1 $d2"
[ "$f2" = 1 ] || fail "the rule fired on $f2 flows, expected 1"
lt 0 "$(metric 'slowdown_names_parsed_total{kind="sni"}' <"$dir/m2")" || fail "no SNI counted"
lt 0 "$(metric 'slowdown_verdicts_total{verdict="drop"}' <"$dir/m2")" || fail "no drop verdicts"
[ "$(metric slowdown_flows_active <"$dir/m2")" -ge 1 ] || fail "no active flow"
lt 0 "$(metric slowdown_flow_table_capacity <"$dir/m2")" || fail "no flow table capacity"
grep -q '^slowdown_queue_dropped_total{queue="0"} ' "$dir/m2" || fail "no kernel queue counters"

# An unlisted name: fast, counted under no rule, marked settled (it leaves the queue early).
np0=$(metric 'slowdown_rule_packets_total{rule="",action="pass"}' <"$dir/m2")
expect_fast "example.org" "$(fetch "$id" --sni example.org --seconds 2 203.0.113.2)"
sleep 1
scrape >"$dir/m3" || fail "scrape after the fast download"
np1=$(metric 'slowdown_rule_packets_total{rule="",action="pass"}' <"$dir/m3")
lt "$np0" "$np1" || fail "no-rule packets did not move: $np0 $np1"
lt "$np1" 200 || fail "$np1 packets of a settled flow went through the queue (expected a few dozen)"
lt 0 "$(metric 'slowdown_conntrack_marks_total{state="settled"}' <"$dir/m3")" || fail "no settled mark"
[ "$(metric "slowdown_rule_flows_total$rule" <"$dir/m3")" = 1 ] || fail "the fast flow counted under the rule"

# Every sample line is well formed: name{labels} number.
bad=$(grep -v '^#' "$dir/m3" | grep -Evc '^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9.e+-]+$')
[ "$bad" = 0 ] || fail "$bad malformed sample lines"
if command -v promtool >/dev/null; then
    promtool check metrics <"$dir/m3" || fail "promtool check metrics"
    echo "ok: promtool check metrics"
fi
ip netns exec "sd-$id-censor" curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9469/nope | grep -q 404 ||
    fail "an unknown path is not a 404"

# The event log: the throttled flow's name and alert, as eve.json-shaped lines.
kill -USR1 "$(censor_pid "$id")" # (a signal the censor survives; the log is flushed every second anyway)
wait_for "$events" '"event_type":"alert"' 5 || fail "no alert event in $events"
grep -q '"event_type":"tls".*"sni":"abs.twimg.com"' "$events" || fail "no tls event with the SNI"
grep -q '"alert":{"action":"throttle","signature":"tw21","category":"tls_sni"}' "$events" || fail "alert shape"
grep -q '"event_type":"flow_start".*"src_ip":"192.0.2.2"' "$events" || fail "no flow_start"
grep -v '^{"timestamp":"20[0-9-]*T[0-9:.]*+0000","flow_id":[0-9]*,"event_type":"[a-z_]*",' "$events" &&
    fail "an event line of another shape"
"$SD_BIN" lab down "$id" || fail "lab down"
grep -q '"event_type":"flow".*"reason":"shutdown","action":"throttle","rule":"tw21"' "$events" ||
    fail "no release event for the throttled flow at shutdown"
assert_gone "$id"
echo PASS
