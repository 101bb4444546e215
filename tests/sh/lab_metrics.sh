#!/usr/bin/env bash
# Metrics of a censor in the lab (issue 10): scraped with curl over HTTP
# (text exposition 0.0.4) while a throttled download runs, the counters of
# the throttling rule move (packets, bytes, drops, flows), the untouched flow
# counts under no rule, and a settled flow is marked and leaves the queue.
# The event log of the same run has the decision lines. promtool checks the
# exposition too when it is installed.
# Every wait is a poll against a deadline, never a fixed sleep: on a busy
# machine the download may start seconds late, and the counters must be seen
# moving while it runs (a scrape is "during" the download when the fetch is
# still running after the scrape returned).
. "$(dirname "$0")/lablib.bash"
need_lab
command -v curl >/dev/null || skip "needs curl"

dir=$(mktemp -d)
trap 'cleanup; rm -rf "$dir"' EXIT
id=met$$
events=$dir/events.json
lab_up "$id" --preset tw21-initial --run-arg=--metrics --run-arg=127.0.0.1:9469 --run-arg=--events --run-arg="$events"

scrape() { ip netns exec "sd-$id-censor" curl -sf --max-time 10 http://127.0.0.1:9469/metrics; }
# metric NAME_WITH_LABELS < exposition: its value (0 when absent)
metric() { awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }'; }
rule='{rule="tw21",action="throttle"}'
# m FILE NAME: metric NAME of the scrape in FILE
m() { metric "$2" <"$1"; }
running() { kill -0 "$fpid" 2>/dev/null; }

# The listener is up once the lab is (a few tries: a loaded machine may be slow to answer).
for _ in $(seq 1 20); do scrape >"$dir/m0" && break; sleep 0.5; done
[ -s "$dir/m0" ] || fail "no metrics at 127.0.0.1:9469 in the censor namespace"
grep -q '^# TYPE slowdown_rule_packets_total counter$' "$dir/m0" || fail "no TYPE line: $(head -5 "$dir/m0")"
[ "$(m "$dir/m0" slowdown_policy_generation)" = 1 ] || fail "policy generation is not 1"
grep -q '^slowdown_policy_info{name="tw21-initial"} 1$' "$dir/m0" || fail "no policy_info for tw21-initial"
p0=$(m "$dir/m0" "slowdown_rule_packets_total$rule")

# A throttled download in the background: 15 s of transfer once the handshake
# is done, room for scrapes that take seconds on a loaded machine.
fetch "$id" --sni abs.twimg.com --seconds 15 203.0.113.2 >"$dir/fetch" &
fpid=$!
# 1. The rule's counters appear while it runs (the handshake may take a while on a busy machine).
deadline=$((SECONDS + 60))
while :; do
    scrape >"$dir/m1" || fail "scrape during the download"
    lt 0 "$(m "$dir/m1" "slowdown_rule_dropped_total$rule")" && break
    running || fail "the download ended and the rule's counters had not moved: $(grep "$rule" "$dir/m1" | tr '\n' ' ')"
    [ $SECONDS -lt $deadline ] || fail "no drops under the rule within 60 s"
    sleep 0.3
done
running || fail "the rule's counters appeared only when the download had ended (too late to be useful)"
p1=$(m "$dir/m1" "slowdown_rule_packets_total$rule")
b1=$(m "$dir/m1" "slowdown_rule_bytes_total$rule")
d1=$(m "$dir/m1" "slowdown_rule_dropped_total$rule")
# 2. ... and keep moving while it still runs (the workers publish every 0.5 s).
t1=$SECONDS
while :; do
    sleep 0.5
    scrape >"$dir/m2" || fail "second scrape during the download"
    p2=$(m "$dir/m2" "slowdown_rule_packets_total$rule")
    b2=$(m "$dir/m2" "slowdown_rule_bytes_total$rule")
    d2=$(m "$dir/m2" "slowdown_rule_dropped_total$rule")
    lt "$p1" "$p2" && lt "$b1" "$b2" && lt "$d1" "$d2" && break
    running || fail "the counters did not move during the download: packets $p1 $p2, bytes $b1 $b2, drops $d1 $d2"
done
running || fail "the counters moved only when the download had ended: packets $p1 $p2, drops $d1 $d2"
f2=$(m "$dir/m2" "slowdown_rule_flows_total$rule")
echo "rule tw21 during the download: packets $p0 -> $p1 -> $p2, bytes $b1 -> $b2, dropped $d1 -> $d2," \
    "flows $f2 ($((SECONDS - t1)) s apart)"
wait $fpid
expect_throttled "abs.twimg.com" "$(cat "$dir/fetch")"
[ "$f2" = 1 ] || fail "the rule fired on $f2 flows, expected 1"
lt 0 "$(m "$dir/m2" 'slowdown_names_parsed_total{kind="sni"}')" || fail "no SNI counted"
lt 0 "$(m "$dir/m2" 'slowdown_verdicts_total{verdict="drop"}')" || fail "no drop verdicts"
[ "$(m "$dir/m2" slowdown_flows_active)" -ge 1 ] || fail "no active flow"
lt 0 "$(m "$dir/m2" slowdown_flow_table_capacity)" || fail "no flow table capacity"
grep -q '^slowdown_queue_dropped_total{queue="0"} ' "$dir/m2" || fail "no kernel queue counters"

# An unlisted name: fast, counted under no rule, marked settled (it leaves the queue early).
np0=$(m "$dir/m2" 'slowdown_rule_packets_total{rule="",action="pass"}')
expect_fast "example.org" "$(fetch "$id" --sni example.org --seconds 2 203.0.113.2)"
# Polled until the count is there and has stopped changing (two scrapes 0.6 s apart agree).
deadline=$((SECONDS + 30))
prev=-1
while :; do
    scrape >"$dir/m3" || fail "scrape after the fast download"
    np1=$(m "$dir/m3" 'slowdown_rule_packets_total{rule="",action="pass"}')
    lt "$np0" "$np1" && [ "$np1" = "$prev" ] && lt 0 "$(m "$dir/m3" 'slowdown_conntrack_marks_total{state="settled"}')" &&
        break
    [ $SECONDS -lt $deadline ] || fail "no-rule packets or the settled mark did not show within 30 s: $np0 $np1"
    prev=$np1
    sleep 0.6
done
echo "no rule: packets $np0 -> $np1"
lt "$np1" 200 || fail "$np1 packets of a settled flow went through the queue (expected a few dozen)"
[ "$(m "$dir/m3" "slowdown_rule_flows_total$rule")" = 1 ] || fail "the fast flow counted under the rule"

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
wait_for "$events" '"event_type":"alert"' 15 || fail "no alert event in $events"
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
