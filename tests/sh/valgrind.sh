#!/usr/bin/env bash
# valgrind memcheck over the golden captures (issue 9): every capture/preset
# pair of tests/golden/MANIFEST through `slowdown pcap --json`, with the
# output compared to the expected one (an optimised build must agree with
# the ASan build), plus `explain`, `check`, `presets` and an error path.
# Any memcheck error or definite/indirect leak fails the test.
#
# Memcheck cannot run a sanitized binary, and CTest's SD_BIN is the ASan
# build. The binary comes from SD_VALGRIND_BIN (`make test` builds the plain
# RelWithDebInfo build's slowdown and sets it); without it, SD_BIN is used if
# it has no sanitizer runtime; otherwise the test is skipped (77).
set -u
: "${SD_BIN:?}" "${SD_SOURCE_DIR:?}" "${SD_BUILD_DIR:?}"

sanitized() { ldd "$1" 2>/dev/null | grep -qE 'libasan|libubsan' || nm "$1" 2>/dev/null | grep -q __asan_init; }

bin=${SD_VALGRIND_BIN:-}
if [ -z "$bin" ] && ! sanitized "$SD_BIN"; then
  bin=$SD_BIN
fi
if [ -z "$bin" ]; then
  echo "skip: SD_BIN is sanitized; set SD_VALGRIND_BIN to a plain build's slowdown (make test does)"
  exit 77
fi
if [ ! -x "$bin" ] || sanitized "$bin"; then
  echo "SD_VALGRIND_BIN=$bin: not an executable without sanitizers"
  exit 1
fi
command -v valgrind >/dev/null || { echo "skip: valgrind is not installed"; exit 77; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$SD_BUILD_DIR/sd-gencaps" "$work" >/dev/null || { echo "sd-gencaps failed"; exit 1; }

# --max-flows keeps memcheck's bookkeeping of the flow table small; no golden
# capture comes near 65536 flows, so the output is the same as with the
# default.
vg=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
    --show-leak-kinds=definite,indirect)
pass=0 fail=0

# run WANT_STATUS NAME ARGS...: slowdown ARGS under memcheck.
run() {
  local want=$1 name=$2
  shift 2
  "${vg[@]}" "$bin" "$@" >"$work/$name.out" 2>"$work/$name.err"
  local rc=$?
  if [ "$rc" = 99 ] || grep -q '^==[0-9]*==' "$work/$name.err"; then
    echo "FAIL $name: memcheck:"; sed -n 1,40p "$work/$name.err"; fail=$((fail + 1)); return 1
  fi
  if [ "$rc" != "$want" ]; then
    echo "FAIL $name: status $rc, expected $want: $(head -c 300 "$work/$name.err")"; fail=$((fail + 1)); return 1
  fi
  pass=$((pass + 1))
}

while read -r cap preset; do
  case "$cap" in '' | '#'*) continue ;; esac
  case "$preset" in
    at=*) sel=(--at "${preset#at=}");;   # the presets in force at that time (as golden.sh)
    *) sel=(--preset "$preset");;
  esac
  run 0 "$cap.$preset" pcap --json --max-flows 65536 "${sel[@]}" "$work/$cap.pcap" || continue
  if ! diff -q "$SD_SOURCE_DIR/tests/golden/$cap.$preset.out" "$work/$cap.$preset.out" >/dev/null; then
    echo "FAIL $cap/$preset: the plain build's output differs from tests/golden/$cap.$preset.out"
    diff -u "$SD_SOURCE_DIR/tests/golden/$cap.$preset.out" "$work/$cap.$preset.out" | head -20
    fail=$((fail + 1))
  fi
done <"$SD_SOURCE_DIR/tests/golden/MANIFEST"

run 0 explain explain --max-flows 65536 --preset tw21-exact -o "$work/passed.pcap" "$work/tls_split.pcap"
run 0 check check "$SD_SOURCE_DIR"/presets/*.pol
run 0 presets presets --json
head -c 5000 "$work/http_dns.pcap" >"$work/truncated.pcap"
run 1 truncated pcap --max-flows 65536 "$work/truncated.pcap"
printf 'rule x when sni in nosuchset then drop\n' >"$work/bad.pol"
run 1 badpolicy pcap --policy "$work/bad.pol" "$work/http_dns.pcap"

echo "valgrind: $pass passed, $fail failed ($bin)"
[ "$fail" -eq 0 ]
