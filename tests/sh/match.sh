#!/usr/bin/env bash
# slowdown match: the 2021 collateral of "*t.co*" and the rules of the other
# presets, on exact expected output; --as, --all, --json, CSV and comment
# lines, the patterns, and batches (1000 names through
# sd_names_lookup_batch() give the answers of the same names a line at a
# time); then the engine's own decisions over a generated mix agree with it,
# and its --why trace names the patterns too.
set -u
: "${SD_BIN:?}" "${SD_BUILD_DIR:?}"
work="$SD_BUILD_DIR/match.d"
rm -rf "$work"
mkdir -p "$work" || exit 1
trap 'rm -rf "$work"' EXIT
export ASAN_OPTIONS="exitcode=86:detect_leaks=1" UBSAN_OPTIONS="exitcode=86:halt_on_error=1"

pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
# same NAME FILE EXPECTED-TEXT
same() {
    if diff -u <(printf '%s' "$3") "$2" >"$work/diff"; then ok; else bad "$1"; cat "$work/diff"; fi
}

printf '%s\n' twitter.com reddit.com microsoft.com example.org t.co throttletwitter.com abs.twimg.com twimg.com \
    '# a comment' '' '17,rt.com' '  githubusercontent.com  ' $'TWITTER.COM\r' >"$work/list"

# Day 1 (tw21-initial): the substring rule takes reddit.com, microsoft.com, rt.com and githubusercontent.com;
# *.twimg.com needs the dot; names are compared byte for byte (TWITTER.COM passes).
"$SD_BIN" match --preset tw21-initial "$work/list" >"$work/out" 2>"$work/err"
[ $? = 0 ] && ok || bad "tw21-initial: status"
T=$'\t'
same "tw21-initial" "$work/out" "twitter.com${T}tw21${T}tw21:throttle${T}*twitter.com
reddit.com${T}tw21${T}tw21:throttle${T}*t.co*
microsoft.com${T}tw21${T}tw21:throttle${T}*t.co*
t.co${T}tw21${T}tw21:throttle${T}*t.co*
throttletwitter.com${T}tw21${T}tw21:throttle${T}*twitter.com
abs.twimg.com${T}tw21${T}tw21:throttle${T}*.twimg.com
rt.com${T}tw21${T}tw21:throttle${T}*t.co*
githubusercontent.com${T}tw21${T}tw21:throttle${T}*t.co*
"
grep -q "11 names, 8 matched (tw21-initial); by set: tw21 8" "$work/err" && ok || bad "summary: $(cat "$work/err")"

# The day after (--at picks tw21-tco-fixed): t.co exact; reddit.com and microsoft.com no longer match.
"$SD_BIN" match --at 2021-03-12T00:00Z --all "$work/list" >"$work/out" 2>/dev/null
same "--at 2021-03-12 --all" "$work/out" "twitter.com${T}tw21${T}tw21:throttle${T}*twitter.com
reddit.com${T}-${T}-${T}-
microsoft.com${T}-${T}-${T}-
example.org${T}-${T}-${T}-
t.co${T}tw21${T}tw21:throttle${T}t.co
throttletwitter.com${T}tw21${T}tw21:throttle${T}*twitter.com
abs.twimg.com${T}tw21${T}tw21:throttle${T}*.twimg.com
twimg.com${T}-${T}-${T}-
rt.com${T}-${T}-${T}-
githubusercontent.com${T}-${T}-${T}-
TWITTER.COM${T}-${T}-${T}-
"

# Rules by field, negated conditions and other conditions counted.
cat >"$work/p.pol" <<'EOF'
names tw twitter.com *.twitter.com
names ads *.ads.example
ips cdn 198.51.100.0/24
rule by-dns  when dns in tw then drop
rule by-sni  when sni in tw and tcp then throttle rate=128kbit
rule by-any  when name in ads then rst
rule cdn     when server in cdn and not sni in tw then freeze bytes=16384
EOF
printf '%s\n' api.twitter.com x.ads.example example.org >"$work/l2"
"$SD_BIN" match --policy "$work/p.pol" "$work/l2" >"$work/out" 2>/dev/null
same "--policy, sni" "$work/out" "api.twitter.com${T}tw${T}by-sni:throttle+1${T}*.twitter.com
x.ads.example${T}ads${T}by-any:block${T}*.ads.example
"
"$SD_BIN" match --policy "$work/p.pol" --as dns "$work/l2" >"$work/out" 2>/dev/null
same "--policy, --as dns" "$work/out" "api.twitter.com${T}tw${T}by-dns:block${T}*.twitter.com
x.ads.example${T}ads${T}by-any:block${T}*.ads.example
"

# Every pattern that matches, once, whatever its kind; a name over 255 bytes is not explained.
printf '%s\n' 'names a t.co *t.co* *.co *co *o* .co' 'names b *t.co*' 'rule r when sni in a then drop' >"$work/q.pol"
long=$(printf 'x%.0s' $(seq 300)).t.co
printf 't.co\n%s\n' "$long" | "$SD_BIN" match --policy "$work/q.pol" >"$work/out" 2>/dev/null
same "all kinds" "$work/out" "t.co${T}a,b${T}r:block${T}*co,*.co,t.co,*o*,*t.co*
${long}${T}a,b${T}r:block${T}-
"

# JSON: one object per name, then the summary; names with any bytes come out escaped.
printf 'reddit.com\nexample.org\nt.co\x01x\n' | "$SD_BIN" match --preset tw21-initial --json --all >"$work/out" 2>/dev/null
python3 - "$work/out" <<'EOF' && ok || bad "--json"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert [l["type"] for l in lines] == ["name", "name", "name", "summary"], lines
assert lines[0] == {"type": "name", "name": "reddit.com", "sets": ["tw21"],
                    "rules": [{"rule": "tw21", "action": "throttle", "other_conditions": 0}],
                    "patterns": [{"pattern": "*t.co*", "sets": ["tw21"]}]}, lines[0]
assert lines[1]["sets"] == [] and lines[1]["rules"] == [] and lines[1]["patterns"] == [], lines[1]
assert lines[2]["name"] == "t.co\x01x" and lines[2]["sets"] == ["tw21"], lines[2]
assert lines[3] == {"type": "summary", "names": 3, "matched": 2, "sets": {"tw21": 2}}, lines[3]
EOF

# Batches: 1000 names (several batches of 256) against the same names one per run of the tool would be slow;
# instead the whole list must give, name by name, what lists of one name give for a sample, and what the
# list's halves give when run on their own.
python3 - "$work/big" <<'EOF'
import random, sys
r = random.Random(7)
syl = ["t", "co", "twit", "ter", "red", "dit", "mi", "cro", "soft", "ex", "am", "ple", "img", "a", "b"]
tld = [".com", ".co", ".org", ".ru", ".twimg.com", ".twitter.com", ""]
with open(sys.argv[1], "w") as f:
    for i in range(1000):
        f.write("".join(r.choice(syl) for _ in range(r.randint(1, 5))) + r.choice(tld) + "\n")
EOF
"$SD_BIN" match --preset tw21-initial --all "$work/big" >"$work/out" 2>/dev/null
n=$(wc -l <"$work/out")
[ "$n" = 1000 ] && ok || bad "1000 names: $n lines"
m=$(grep -c "${T}tw21${T}" "$work/out")
[ "$m" -gt 100 ] && [ "$m" -lt 900 ] && ok || bad "1000 names: $m matched, expected a mix"
head -n 377 "$work/big" | "$SD_BIN" match --preset tw21-initial --all >"$work/a" 2>/dev/null
tail -n +378 "$work/big" | "$SD_BIN" match --preset tw21-initial --all >>"$work/a" 2>/dev/null
cmp -s "$work/out" "$work/a" && ok || bad "batches: the halves answer differently"
: >"$work/one"
for i in 1 2 3 5 8 13 255 256 257 511 512 999 1000; do
    sed -n "${i}p" "$work/big" | "$SD_BIN" match --preset tw21-initial --all >>"$work/one" 2>/dev/null
done
for i in 1 2 3 5 8 13 255 256 257 511 512 999 1000; do sed -n "${i}p" "$work/out"; done >"$work/sample"
cmp -s "$work/one" "$work/sample" && ok || bad "batches: single names answer differently"

# Errors: one line, the right status.
"$SD_BIN" match --as ftp </dev/null >/dev/null 2>"$work/err"
[ $? = 2 ] && grep -q "expected sni, host or dns" "$work/err" && ok || bad "--as ftp"
"$SD_BIN" match "$work/none" >/dev/null 2>"$work/err"
[ $? = 1 ] && grep -q "none: No such file" "$work/err" && ok || bad "missing file"
"$SD_BIN" match "$work" >/dev/null 2>"$work/err"
[ $? = 1 ] && [ "$(wc -l <"$work/err")" = 1 ] && ok || bad "directory: $(cat "$work/err")"

# The engine agrees: over a generated mix (TLS, QUIC, DNS, HTTP-less; bench_mixgen), every flow whose name
# fired a rule is one that match lists with that rule, and every flow opened inside whose parsed name did not fire
# is one for which match lists no rule free of other conditions.
MIXGEN=$SD_BUILD_DIR/bench_mixgen
if [ -x "$MIXGEN" ]; then
    "$MIXGEN" -o "$work/mix.pcap" -p 30000 -f 3000 -s 7 >/dev/null 2>&1 || bad "bench_mixgen"
    for preset in tw21-initial tw21-exact quic23-sni; do
        python3 - "$SD_BIN" "$preset" "$work/mix.pcap" <<'EOF' && ok || bad "engine and match disagree under $preset"
import json, subprocess, sys
sd, preset, cap = sys.argv[1:4]
fields = {"sni": ("sni", ("tls_sni", "quic_sni")), "http_host": ("host", ("http_host",)), "dns_qname": ("dns", ("dns_qname",))}
out = subprocess.run([sd, "pcap", "--preset", preset, "--json", cap], capture_output=True, text=True, check=True).stdout
flows = [j for j in map(json.loads, out.splitlines()) if j.get("type") == "flow"]
fired_total = checked = bad = 0
for field, (as_, triggers) in fields.items():
    fl = [f for f in flows if f.get(field) is not None]
    if not fl:
        continue
    names = sorted({f[field] for f in fl})
    res = subprocess.run([sd, "match", "--preset", preset, "--as", as_, "--json", "--all"], input="\n".join(names) + "\n",
                         capture_output=True, text=True, check=True).stdout
    m = {j["name"]: j for j in map(json.loads, res.splitlines()) if j["type"] == "name"}
    for f in fl:
        rules = {r["rule"]: r for r in m[f[field]]["rules"]}
        fired = f["rule"] is not None and f["trigger"] in triggers
        fired_total += fired
        checked += 1
        if fired and f["rule"] not in rules:
            print("engine fired", f["rule"], "on", f[field], "; match lists", list(rules)); bad += 1
        if not fired and f["opened_by"] == "inside" and any(r["other_conditions"] == 0 for r in rules.values()):
            print("engine passed", f[field], "; match lists", list(rules)); bad += 1
assert checked > 1000 and fired_total >= 10, (checked, fired_total)
sys.exit(1 if bad else 0)
EOF
    done
else
    echo "skip: engine agreement ($MIXGEN not built)"
fi

# The engine's --why names the pattern too, for the field that fired (generated captures of sd-gencaps).
GENCAPS=$SD_BUILD_DIR/sd-gencaps
if [ -x "$GENCAPS" ] && "$GENCAPS" "$work" >/dev/null 2>&1; then
    "$SD_BIN" explain --preset tw21-initial "$work/demo.pcap" >"$work/why" 2>/dev/null
    for w in "sni 'reddit.com' matched '*t.co*' of set 'tw21'" "sni 'abs.twimg.com' matched '*.twimg.com' of set 'tw21'" \
        "sni 'twitter.com' matched '*twitter.com' of set 'tw21'"; do
        grep -qF "$w" "$work/why" && ok || bad "explain: no line \"$w\""
    done
    grep -q "example.org' matched" "$work/why" && bad "explain: example.org matched nothing" || ok
    printf '%s\n' 'names k *twitter.com *t.co* twitter.com' 'set inspect.dns on' 'rule d when name in k then drop' >"$work/d.pol"
    "$SD_BIN" explain --policy "$work/d.pol" "$work/http_dns.pcap" >"$work/why" 2>/dev/null
    grep -qF "dns 'twitter.com' matched 'twitter.com', '*twitter.com' of set 'k'" "$work/why" && ok ||
        bad "explain: dns patterns: $(grep matched "$work/why")"
else
    echo "skip: explain patterns ($GENCAPS not built)"
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
