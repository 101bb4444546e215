#!/usr/bin/env bash
# Bad input to every command (issue 9): truncated, corrupt, empty, missing
# captures, directories, unknown link types, invalid filters and policies,
# unknown presets, conflicting and unknown options. Each case checks the
# exit status (1 input error, 2 usage error), that stderr is exactly one line
# naming what was wrong, and that nothing crashed (SD_BIN is the ASan/UBSan
# build: a sanitizer report exits 86 and is caught). Then: --help of every
# command exits 0, and no temporary file is left behind.
#
# The temp-file check is exact when the script can give itself a private,
# empty /tmp (a mount namespace: root, as in CI); otherwise it checks a
# private TMPDIR and the names of new /tmp entries only.
set -u
: "${SD_BIN:?}" "${SD_SOURCE_DIR:?}" "${SD_BUILD_DIR:?}"

# (Not when the tree or the build is under /tmp itself: the new /tmp would hide them.)
under_tmp() { case "$(readlink -f "$1")" in /tmp | /tmp/*) return 0 ;; esac; return 1; }
if [ -z "${SD_CLI_TMP:-}" ] && [ "$(id -u)" = 0 ] && ! under_tmp "$0" && ! under_tmp "$SD_BIN" &&
    ! under_tmp "$SD_BUILD_DIR" && ! under_tmp "$SD_SOURCE_DIR" && unshare -m true 2>/dev/null; then
  exec unshare -m bash -c 'if mount --make-rprivate / && mount -t tmpfs tmpfs /tmp; then
      export SD_CLI_TMP=private; else export SD_CLI_TMP=shared; fi; exec bash "$0"' "$0"
fi

work="$SD_BUILD_DIR/cli_errors.d"
rm -rf "$work"
mkdir -p "$work/tmp" || exit 1
trap 'rm -rf "$work"' EXIT
export TMPDIR="$work/tmp"
export ASAN_OPTIONS="exitcode=86:detect_leaks=1:abort_on_error=0"
export UBSAN_OPTIONS="exitcode=86:halt_on_error=1:print_stacktrace=1"
tmp_before=$(ls -A /tmp | sort)

pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }

# expect STATUS NEEDLE ARGS...: runs slowdown ARGS; checks the status, no
# sanitizer report, and for an error a single stderr line containing NEEDLE.
# OUT=FILE sends stdout there; FIRST_LINE=1 checks only the first line (the
# tool's own usage error, which main.c follows with the command list).
expect() {
  local want=$1 needle=$2
  shift 2
  "$SD_BIN" "$@" >"${OUT:-$work/out}" 2>"$work/err"
  local rc=$? what="slowdown $*"
  if [ "$rc" = 86 ] || [ "$rc" -ge 128 ] || grep -qE 'Sanitizer|runtime error' "$work/err"; then
    bad "$what: crashed (status $rc)"; sed -n 1,15p "$work/err"; return
  fi
  if [ "$rc" != "$want" ]; then
    bad "$what: status $rc, expected $want; stderr: $(head -c 300 "$work/err")"; return
  fi
  if [ "$want" != 0 ]; then
    local lines
    lines=$(wc -l <"$work/err")
    if [ "$lines" != 1 ] && [ -z "${FIRST_LINE:-}" ]; then
      bad "$what: $lines lines on stderr, expected one:"; sed -n 1,5p "$work/err"; return
    fi
    if ! head -1 "$work/err" | grep -qF -- "$needle"; then
      bad "$what: stderr does not name '$needle': $(cat "$work/err")"; return
    fi
  fi
  ok
}

# ---- inputs ----
"$SD_BUILD_DIR/sd-gencaps" "$work" >/dev/null || { echo "sd-gencaps failed"; exit 1; }
good="$work/http_dns.pcap"
size=$(stat -c %s "$good")
head -c $((size - 300)) "$good" >"$work/truncated.pcap"          # cut inside a record
head -c 30 "$good" >"$work/cut_header.pcap"                      # inside the first record header
printf 'this is not a capture file at all' >"$work/garbage.pcap"
: >"$work/empty.pcap"
cp "$good" "$work/link147.pcap"
printf '\x93\x00\x00\x00' | dd of="$work/link147.pcap" bs=1 seek=20 conv=notrunc status=none
cp "$good" "$work/caplen.pcap"                                   # first record: caplen 0x7fffffff
printf '\xff\xff\xff\x7f' | dd of="$work/caplen.pcap" bs=1 seek=32 conv=notrunc status=none
ng="$SD_SOURCE_DIR/fuzz/corpus/pcap/tls_names_ns.pcapng"
head -c $(($(stat -c %s "$ng") - 100)) "$ng" >"$work/truncated.pcapng"
mkdir -p "$work/adir"
printf 'names tw twitter.com\nrule tw when sni in tw then throttle rate=fast\n' >"$work/bad_rate.pol"
printf 'names tw twitter.com\nrule tw when sni in nosuchset then drop\n' >"$work/bad_set.pol"
printf 'names tw file missing-list.txt\n' >"$work/bad_list.pol"
printf 'names tw twitter.com\nrule tw when sni in tw then drop\n' >"$work/good.pol"
printf '\x00\x01binary\n' >"$work/binary.pol"

# ---- slowdown pcap / explain: input errors (1) ----
for cmd in pcap explain; do
  expect 1 "$work/truncated.pcap" $cmd "$work/truncated.pcap"
  expect 1 "$work/cut_header.pcap" $cmd "$work/cut_header.pcap"
  expect 1 "$work/garbage.pcap" $cmd "$work/garbage.pcap"
  [ ! -s "$work/out" ] && ok || bad "$cmd: a report printed for a file that could not be read"
  expect 1 "$work/empty.pcap" $cmd "$work/empty.pcap"
  expect 1 "$work/nonexistent.pcap" $cmd "$work/nonexistent.pcap"
  expect 1 "$work/adir" $cmd "$work/adir"
  expect 1 "link type 147" $cmd "$work/link147.pcap"
  expect 1 "$work/caplen.pcap" $cmd "$work/caplen.pcap"
  expect 1 "$work/truncated.pcapng" $cmd "$work/truncated.pcapng"
  expect 1 "$work/garbage.pcap" $cmd "$good" "$work/garbage.pcap"   # the second of two files
done
expect 1 "$work/bad_rate.pol:2:" pcap --policy "$work/bad_rate.pol" "$good"
expect 1 "$work/bad_set.pol:2:" pcap --preset observe --policy "$work/bad_set.pol" "$good"
expect 1 "missing-list.txt" pcap --policy "$work/bad_list.pol" "$good"
expect 1 "$work/binary.pol" pcap --policy "$work/binary.pol" "$good"
expect 1 "$work/nonexistent.pol" pcap --policy "$work/nonexistent.pol" "$good"
expect 1 "$work/adir" pcap --policy "$work/adir" "$good"
expect 1 "no-such-preset" pcap --preset no-such-preset "$good"
expect 1 "2001-01-01T00:00Z" pcap --at 2001-01-01T00:00Z "$good"
expect 1 "$work/adir/no/out.pcap" pcap -o "$work/adir/no/out.pcap" "$good"
# A failed run leaves no partial -o file; a good one writes it.
expect 1 "$work/truncated.pcap" pcap -o "$work/out.pcap" "$work/truncated.pcap"
[ ! -e "$work/out.pcap" ] && ok || bad "a failed run left its -o file behind"
expect 0 "" pcap -o "$work/out.pcap" "$good"
[ -s "$work/out.pcap" ] && ok || bad "-o wrote nothing"
rm -f "$work/out.pcap"
# Raw IP with the BSD link type value 14 is read, and written (as raw IP).
cp "$work/tls_raw.pcap" "$work/link14.pcap"
printf '\x0e\x00\x00\x00' | dd of="$work/link14.pcap" bs=1 seek=20 conv=notrunc status=none
expect 0 "" pcap -o "$work/out.pcap" "$work/link14.pcap"
[ -s "$work/out.pcap" ] && ok || bad "-o wrote nothing for link type 14"
expect 0 "" pcap "$work/out.pcap"
rm -f "$work/out.pcap"
if [ -c /dev/full ]; then
  expect 1 "/dev/full" pcap -o /dev/full "$good"
  OUT=/dev/full expect 1 "cannot write" pcap "$good" --json
  OUT=/dev/full expect 1 "cannot write" presets
  OUT=/dev/full expect 1 "cannot write" check "$work/good.pol"
  [ -c /dev/full ] && ok || bad "/dev/full is no longer a device"
fi

# ---- usage errors (2) ----
expect 2 "tcp port" pcap -f 'tcp port' "$good"
expect 2 "--bogus" pcap --bogus "$good"
expect 2 "-x" pcap -x "$good"
expect 2 "--policy" pcap "$good" --policy
expect 2 "no capture file" pcap
expect 2 "--max-flows" pcap --max-flows 0 "$good"
expect 2 "--max-flows" pcap --max-flows 12abc "$good"
expect 2 "--max-flows" pcap --max-flows -5 "$good"
expect 2 "--rcvbuf" run --rcvbuf 2g --print-rules
expect 2 "--rcvbuf" run --rcvbuf 100 --print-rules
expect 2 "--max-flows" run --max-flows 0 --print-rules
expect 2 "--max-flows" run --max-flows 2g --print-rules
expect 2 "--balance" run --balance host --print-rules
expect 2 "--bypass conntrack" run --workers 2 --balance flow --bypass bpf --print-rules
expect 2 "exclude" pcap --preset observe --at 2021-03-10T09:00Z "$good"
expect 2 "exclude" explain --at 2021-03-10T09:00Z --preset observe "$good"
expect 2 "yesterday" pcap --at yesterday "$good"
expect 2 "10.0.0.0/33" pcap --inside 10.0.0.0/8,10.0.0.0/33 "$good"
cp "$good" "$work/in.pcap"
expect 2 "input file" pcap -o "$work/in.pcap" "$work/in.pcap"
cmp -s "$good" "$work/in.pcap" && ok || bad "-o onto the input changed the input"

# ---- slowdown check ----
expect 0 "" check "$work/good.pol"
grep -q "ok" "$work/out" && ok || bad "check: no 'ok' for a valid file"
expect 0 "" check --preset tw21-exact "$work/good.pol"
expect 0 "" check "$SD_SOURCE_DIR"/presets/*.pol
expect 1 "$work/bad_rate.pol:2:" check "$work/bad_rate.pol"
grep -qE "^$work/bad_rate.pol:2:[0-9]+: " "$work/err" && ok || bad "check: not FILE:LINE:COL: $(cat "$work/err")"
expect 1 "$work/bad_set.pol:2:" check "$work/bad_set.pol"
expect 1 "$work/nonexistent.pol" check "$work/nonexistent.pol"
expect 1 "$work/adir" check "$work/adir"
expect 1 "no-such-preset" check --preset no-such-preset "$work/good.pol"
expect 2 "no policy file" check
expect 2 "--bogus" check --bogus "$work/good.pol"
expect 2 "--preset" check --preset

# ---- slowdown presets ----
expect 0 "" presets
expect 0 "" presets --json
expect 0 "" presets --show tw21-exact
expect 1 "no-such-preset" presets --show no-such-preset
expect 2 "--show" presets --show
expect 2 "--bogus" presets --bogus

# ---- the tool and --help of every command ----
expect 0 "" --help
expect 0 "" --version
FIRST_LINE=1 expect 2 "no-such-command" no-such-command
FIRST_LINE=1 expect 2 "Usage" 
cmds=$("$SD_BIN" --help | awk '/^Commands:/ {on = 1; next} on && /^  [a-z]/ {print $1}')
[ -n "$cmds" ] && ok || bad "no commands in 'slowdown --help'"
for c in $cmds; do
  "$SD_BIN" "$c" --help >"$work/out" 2>"$work/err"
  rc=$?
  if grep -q "not implemented yet" "$work/err"; then
    echo "skip: slowdown $c --help (the command is not written yet)"
  elif [ "$rc" != 0 ] || [ ! -s "$work/out" ] || grep -qE 'Sanitizer|runtime error' "$work/err"; then
    bad "slowdown $c --help: status $rc, $(wc -c <"$work/out") bytes on stdout"
  else
    ok
  fi
done

# ---- nothing left behind ----
[ -z "$(ls -A "$TMPDIR")" ] && ok || bad "files left in TMPDIR: $(ls -A "$TMPDIR")"
tmp_after=$(ls -A /tmp | sort)
if [ "${SD_CLI_TMP:-}" = private ]; then
  [ "$tmp_before" = "$tmp_after" ] && ok || bad "files left in /tmp: $(comm -13 <(echo "$tmp_before") <(echo "$tmp_after"))"
else
  left=$(comm -13 <(echo "$tmp_before") <(echo "$tmp_after") | grep -iE 'slowdown|^sd[-_.]|pcap' || true)
  [ -z "$left" ] && ok || bad "files left in /tmp: $left"
fi

echo "cli_errors: $pass passed, $fail failed (temp files checked in TMPDIR and $([ "${SD_CLI_TMP:-}" = private ] && echo "a private /tmp" || echo "/tmp by name"))"
[ "$fail" -eq 0 ]
