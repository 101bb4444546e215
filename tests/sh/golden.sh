#!/usr/bin/env bash
# Golden captures: generates them (sd-gencaps), runs `slowdown pcap --json`
# under each preset of tests/golden/MANIFEST and compares with the expected
# output. SD_BLESS=1 rewrites the expected files instead (review the diff!).
# Also checks that `--preset observe` finds every name listed in X.names.
set -u
: "${SD_BIN:?}" "${SD_SOURCE_DIR:?}" "${SD_BUILD_DIR:?}"
gold="$SD_SOURCE_DIR/tests/golden"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$SD_BUILD_DIR/sd-gencaps" "$work" || { echo "sd-gencaps failed"; exit 1; }
pass=0 fail=0
while read -r cap preset; do
  case "$cap" in ''|'#'*) continue;; esac
  out="$work/$cap.$preset.out"
  case "$preset" in
    at=*) sel=(--at "${preset#at=}");;   # the presets in force at that time
    *) sel=(--preset "$preset");;
  esac
  if ! "$SD_BIN" pcap --json "${sel[@]}" "$work/$cap.pcap" >"$out" 2>"$work/err"; then
    echo "FAIL $cap/$preset: slowdown exited non-zero: $(cat "$work/err")"; fail=$((fail+1)); continue
  fi
  if [ "${SD_BLESS:-0}" = 1 ]; then
    cp "$out" "$gold/$cap.$preset.out"; echo "blessed $cap.$preset.out"; pass=$((pass+1)); continue
  fi
  if diff -u "$gold/$cap.$preset.out" "$out" >"$work/diff"; then
    pass=$((pass+1))
  else
    echo "FAIL $cap/$preset differs from tests/golden/$cap.$preset.out:"; head -40 "$work/diff"; fail=$((fail+1))
  fi
  if [ "$preset" = observe ]; then
    while read -r name; do
      [ -n "$name" ] || continue
      if ! grep -qF "\"sni\":\"$name\"" "$out" && ! grep -qF "\"http_host\":\"$name\"" "$out" \
         && ! grep -qF "\"dns_qname\":\"$name\"" "$out"; then
        echo "FAIL $cap/observe: name '$name' not reported"; fail=$((fail+1))
      fi
    done <"$work/$cap.names"
  fi
done <"$gold/MANIFEST"
echo "golden: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
