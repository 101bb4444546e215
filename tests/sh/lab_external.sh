#!/usr/bin/env bash
# The external adapter (slowdown evade --exec, slowdown matrix --external)
# scores someone else's client as a black box, as a user would test zapret or
# ByeDPI: tests/support/split_client.py stands in for such a tool (a TLS
# client that cuts its ClientHello into two TCP segments, as ByeDPI's --split
# does), next to curl and a command that fails. Under tw21-exact:
#   curl (one-segment hello)            throttled  (B5: 130 kbit/s)
#   split_client.py with SPLIT=0        throttled
#   split_client.py cut 60 bytes in     evades     (B14: split evades)
#   a command that writes nothing       broken     (fails without a censor too)
# and each one run alone by slowdown evade --exec reports what the command did
# (bytes written, its exit status and last stderr line).
. "$(dirname "$0")/lablib.bash"
need_lab
command -v curl >/dev/null || skip "needs curl"
[ -x /usr/bin/python3 ] || skip "needs /usr/bin/python3"
here=$(cd "$(dirname "$0")/.." && pwd)
py="/usr/bin/python3 $here/support/split_client.py {addr} {port} {sni} /down?seconds={seconds}"

out=$(mktemp)
trap 'rm -f "$out"; cleanup' EXIT

# One run alone: a failing command's exit status and stderr reach the report.
id=xt$$
lab_up "$id" --preset tw21-exact
line=$("$SD_BIN" evade --lab "$id" --json --exec 'echo no route to {addr} >&2; exit 3')
echo "$line"
[ "$(echo "$line" | json_str end)" = error ] || fail "a failing command is not an error: $line"
echo "$line" | grep -q '"detail":"exit 3: no route to 203.0.113.2"' || fail "exit status or stderr lost: $line"
line=$("$SD_BIN" evade --lab "$id" --json --seconds 2 --exec "$py 60")
echo "$line"
[ "$(echo "$line" | json_str end)" = done ] || fail "split_client did not complete: $line"
lt 2000 "$(echo "$line" | json_num kbps)" || fail "a split hello is held under tw21-exact: $line"
"$SD_BIN" lab down "$id" >/dev/null

declare -A want=([none]=throttled [ext-curl]=throttled [ext-whole]=throttled [ext-split]=evades [ext-broken]=broken)
"$SD_BIN" matrix --preset tw21-exact --strategy none \
    --external "ext-curl=curl -sk --resolve {resolve} {url}" \
    --external "ext-whole=$py 0" \
    --external "ext-split=$py 60" \
    --external "ext-broken=true" \
    --json --quiet >"$out" || fail "slowdown matrix failed: $(cat "$out")"
cat "$out"
[ "$(wc -l <"$out")" = "${#want[@]}" ] || fail "expected ${#want[@]} lines"
for s in "${!want[@]}"; do
    line=$(grep "\"strategy\":\"$s\"" "$out") || fail "no line for $s"
    got=$(echo "$line" | json_str outcome)
    [ "$got" = "${want[$s]}" ] || fail "$s: $got, expected ${want[$s]}: $line"
    echo "ok: $s $got"
done
