#!/usr/bin/env bash
# The evasion matrix under tw21-exact reproduces spec B14, the measured
# outcomes against the 2021 throttler, row for row:
#   split over >= 2 segments (also by a small MSS), padding past one segment,
#   a CCS record before the hello, a >100-byte junk packet first (low TTL),
#   an idle flow, a trailing dot, no SNI or another SNI: evade;
#   a fake ClientHello first (low TTL, bad checksum), FIN or RST after the
#   hello, an unencrypted HTTP or SOCKS proxy: fail (throttled);
# plus what B3/B6 imply: two records in one segment evade (B3, the record
# length check), a <100-byte junk packet keeps the box looking (B6), and the
# baseline is throttled. Every control (no censor) must complete, and the
# matrix must leave no lab behind.
# Not yet reliable (see the open issue): runs only with SD_LAB_EXTRA=1.
[ "${SD_LAB_EXTRA:-0}" = 1 ] || { echo "skipped: set SD_LAB_EXTRA=1 (known mismatches, issue open)"; exit 77; }
. "$(dirname "$0")/lablib.bash"
need_lab

declare -A want=(
    [none]=throttled
    [split]=evades [split-sni]=evades [multisplit]=evades [mss]=evades
    [padding]=evades
    [ccs]=evades
    [tlsrec]=evades
    [junk-large]=evades [junk-small]=throttled
    [fake-ttl]=throttled [fake-badsum]=throttled
    [rst-after]=throttled [fin-after]=throttled
    [idle]=evades
    [sni-dot]=evades [no-sni]=evades [sni-other]=evades
    [http-proxy]=throttled [socks-proxy]=throttled
)

labs_before=$(ls /run/slowdown/labs 2>/dev/null | wc -l)
out=$(mktemp)
trap 'rm -f "$out"; cleanup' EXIT
start=$(date +%s)
"$SD_BIN" matrix --preset tw21-exact --strategies "${!want[*]}" --json --quiet >"$out" ||
    fail "slowdown matrix failed: $(cat "$out")"
echo "matrix: $(($(date +%s) - start)) s for ${#want[@]} strategies and their controls"

[ "$(wc -l <"$out")" = "${#want[@]}" ] || fail "expected ${#want[@]} lines: $(cat "$out")"
bad=0
for s in "${!want[@]}"; do
    line=$(grep "\"strategy\":\"$s\"" "$out") || fail "no line for $s"
    echo "$line" | grep -q '^{"type":"outcome","preset":"tw21-exact","strategy":"'"$s"'","outcome":"' ||
        fail "not the contract's shape: $line"
    got=$(echo "$line" | json_str outcome)
    ratio=$(echo "$line" | json_num goodput_ratio)
    [ "$(echo "$line" | json_str control_end)" = done ] || fail "$s: the no-censor control failed: $line"
    if [ "$got" = "${want[$s]}" ]; then
        echo "ok: $s $got ($ratio)"
    else
        echo "MISMATCH: $s $got, B14 says ${want[$s]}: $line"
        bad=1
    fi
done
[ $bad = 0 ] || fail "the matrix does not reproduce B14"
[ "$(ls /run/slowdown/labs 2>/dev/null | wc -l)" = "$labs_before" ] || fail "the matrix left labs behind"
ip netns list | grep -q "^sd-mx" && fail "the matrix left namespaces behind"
echo PASS
