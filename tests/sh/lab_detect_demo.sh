#!/usr/bin/env bash
# slowdown demo, as `sudo make demo` runs it (lab, preset tw21-initial, the
# default 6 s per name), takes its table from the detector: the four names
# the 2021 rules caught (twitter.com; abs.twimg.com by *.twimg.com;
# reddit.com and microsoft.com by the t.co substring bug) are throttled, with
# the detector's kind, a rate estimate in a policer's range and a control
# measured at the same time at least 10x faster; example.org is not. The whole
# demo takes about 35 s (at most 90 s here, for a loaded machine). Without
# root the offline demo runs instead, in its own table.
. "$(dirname "$0")/lablib.bash"
need_lab

t0=$(date +%s)
out=$("$SD_BIN" demo --json) || fail "demo"
secs=$(($(date +%s) - t0))
echo "$out"
[ "$(echo "$out" | grep -c '"type":"measurement","mode":"lab"')" = 5 ] || fail "not five lab measurements"
[ "$secs" -le 90 ] || fail "the demo took $secs s"
echo "ok: five names measured in the lab in $secs s"
for name in twitter.com abs.twimg.com reddit.com microsoft.com; do
    line=$(echo "$out" | grep "\"name\":\"$name\"")
    [ "$(echo "$line" | json_str verdict)" = throttled ] || fail "$name: $line"
    kind=$(echo "$line" | json_str kind)
    case $kind in policing | shaping | loss | limited) ;; *) fail "$name: kind '$kind'" ;; esac
    est=$(echo "$line" | json_num rate_estimate_kbps)
    lt 64 "$est" && lt "$est" 256 || fail "$name: rate estimate $est kbit/s (128 configured)"
    kbps=$(echo "$line" | json_num kbps)
    ctl=$(echo "$line" | json_num control_kbps)
    lt "$(awk -v a="$kbps" 'BEGIN { print a * 10 }')" "$ctl" || fail "$name: control $ctl kbit/s, A $kbps kbit/s"
    echo "ok: $name throttled ($kind, ~$est kbit/s; control $ctl kbit/s)"
done
line=$(echo "$out" | grep '"name":"example.org"')
[ "$(echo "$line" | json_str verdict)" = not_throttled ] || fail "example.org: $line"
[ "$(echo "$line" | sed -n 's/.*"rate_estimate_kbps":\(null\).*/\1/p')" = null ] || fail "example.org: a rate: $line"
echo "ok: example.org not throttled"

# The fallback: no root, no lab, the offline demo's table (tw21-initial and tw21-exact).
if command -v setpriv >/dev/null && setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$SD_BIN"; then
    off=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$SD_BIN" demo 2>&1) || fail "offline demo: $off"
    echo "$off"
    echo "$off" | grep -q 'not root, so no network lab' || fail "offline demo: no notice"
    echo "$off" | grep -q '^reddit.com .*THROTTLED .*full speed' || fail "offline demo: reddit.com row"
    off=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$SD_BIN" demo --json 2>/dev/null) || fail "offline --json"
    [ "$(echo "$off" | grep -c '"mode":"offline"')" = 10 ] || fail "offline demo: not 10 JSON lines: $off"
    echo "ok: the offline demo without root"
else
    echo "(offline fallback not checked: $SD_BIN is not reachable as nobody)"
fi
echo PASS
