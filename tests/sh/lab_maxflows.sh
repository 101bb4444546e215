#!/usr/bin/env bash
# The inline censor's flow cap (slowdown run --max-flows N --workers 2): the
# client opens 200 UDP flows (one datagram each, to 200 server ports) from
# its one address, so the kernel's address-pair balance puts them all in one
# queue; that worker's table holds its share of the cap (40 / 2 = 20) and
# evicts the rest. The metrics must show at most 40 flows in the tables, and
# at least 160 evictions; without the cap (1048576 per worker) all 200 would
# stay and none be evicted. A listed name is still throttled afterwards: a
# fresh flow gets a slot by evicting an idle one.
. "$(dirname "$0")/lablib.bash"
need_lab
command -v curl >/dev/null || skip "needs curl"

id=mfl$$
lab_up "$id" --preset tw21-initial --run-arg=--workers=2 --run-arg=--queue-packets=0 \
    --run-arg=--max-flows=40 --run-arg=--metrics --run-arg=127.0.0.1:9470
scrape() { ip netns exec "sd-$id-censor" curl -sf --max-time 10 http://127.0.0.1:9470/metrics; }
metric() { awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }'; }

for _ in $(seq 1 20); do scrape >/dev/null && break; sleep 0.5; done
c0=$(scrape | metric slowdown_flows_created_total)

"$SD_BIN" lab exec "$id" client -- bash -c \
    'for p in $(seq 20000 20199); do printf x >/dev/udp/203.0.113.2/$p; done' ||
    fail "cannot send from the client"

# The workers publish their counters every 0.5 s: wait until the 200 flows are counted.
deadline=$((SECONDS + 20))
while :; do
    m=$(scrape) || fail "scrape"
    created=$(metric slowdown_flows_created_total <<<"$m")
    [ $((created - c0)) -ge 200 ] && break
    [ $SECONDS -lt $deadline ] || fail "the censor counted $((created - c0)) new flows of 200 within 20 s"
    sleep 0.3
done
active=$(metric slowdown_flows_active <<<"$m")
evicted=$(metric slowdown_flows_evicted_total <<<"$m")
[ "$active" -le 40 ] || fail "$active flows in the tables, cap 40"
[ "$evicted" -ge 160 ] || fail "only $evicted flows evicted: 200 new flows, at most 40 kept"

out=$(fetch "$id" --sni twitter.com --seconds 4 203.0.113.2)
kbps=$(json_num kbps <<<"$out")
[ -n "$kbps" ] && lt "$kbps" 1000 || fail "twitter.com not throttled with a full table: $out"
echo "ok: 200 flows, $active in the tables (cap 40), $evicted evicted; twitter.com at $kbps kbit/s"
