#!/usr/bin/env bash
# slowdown demo (lab, preset tw21-initial) takes its table from the detector:
# the four names the 2021 rules caught (twitter.com; abs.twimg.com by
# *.twimg.com; reddit.com and microsoft.com by the t.co substring bug) are
# throttled with a rate estimate, example.org is not. (A 4 s run is short: the
# first policed flow to a fresh server is still in TCP's timeout backoff, so
# the estimate is only checked for being in a policer's range.)
. "$(dirname "$0")/lablib.bash"
need_lab

out=$("$SD_BIN" demo --json --seconds 4) || fail "demo"
echo "$out"
for name in twitter.com abs.twimg.com reddit.com microsoft.com; do
    line=$(echo "$out" | grep "\"name\":\"$name\"")
    [ "$(echo "$line" | json_str verdict)" = throttled ] || fail "$name: $line"
    est=$(echo "$line" | json_num rate_estimate_kbps)
    lt 40 "$est" && lt "$est" 250 || fail "$name: rate estimate $est kbit/s"
    echo "ok: $name throttled, ~$est kbit/s"
done
line=$(echo "$out" | grep '"name":"example.org"')
[ "$(echo "$line" | json_str verdict)" = not_throttled ] || fail "example.org: $line"
echo "ok: example.org not throttled"
echo PASS
