#!/bin/bash
# bench/pair_names.sh - two versions of the matcher, timed in one process.
#
#   bench/pair_names.sh [-r ROUNDS] [-s SET]... A B
#
# A and B are each a names.c file or a git revision (its src/names.c). Both
# are compiled (-O3, as the Release build) into one pair_names binary, with
# B's public symbols renamed; it checks that both answer every name alike,
# then times batches of 1000 lookups of each in turn (pair_names.c). SET is
# synth-mix (default), synth-even or refilter; -s may be given more than
# once. ROUNDS (default 40) rounds of 20 batch pairs each.
#
# The figure to read is the median of B/A over the pairs: on this host two
# runs of the same binary can differ by 30%, but a pair is run milliseconds
# apart. (bench/ab_names.sh alternates whole runs instead.)
set -eu -o pipefail

ROUNDS=40
SETS=()
while getopts r:s: o; do
    case $o in
        r) ROUNDS=$OPTARG ;;
        s) SETS+=("$OPTARG") ;;
        *) echo "usage: $0 [-r ROUNDS] [-s SET]... A B" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 2 ] || { echo "usage: $0 [-r ROUNDS] [-s SET]... A B" >&2; exit 2; }
[ ${#SETS[@]} -gt 0 ] || SETS=(synth-mix)

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# A names.c: the file itself, else src/names.c at that revision.
fetch() {
    if [ -f "$1" ]; then
        cp "$1" "$2"
    elif git -C "$ROOT" rev-parse -q --verify "$1^{commit}" >/dev/null; then
        git -C "$ROOT" show "$1:src/names.c" >"$2"
    else
        echo "$0: $1: neither a file nor a revision" >&2
        exit 2
    fi
}
fetch "$1" "$TMP/a.c"
fetch "$2" "$TMP/b.c"

CC=${CC:-cc}
CFLAGS=(-O3 -DNDEBUG -std=gnu11 -Wall -Wextra -I"$ROOT/src" -I"$ROOT/bench" "-DSD_SOURCE_DIR=\"$ROOT\"")
RENAME=()
for f in new add compile lookup free count; do
    RENAME+=("-Dsd_names_$f=B_sd_names_$f")
done
"$CC" "${CFLAGS[@]}" -c "$TMP/a.c" -o "$TMP/a.o"
"$CC" "${CFLAGS[@]}" "${RENAME[@]}" -c "$TMP/b.c" -o "$TMP/b.o"
"$CC" "${CFLAGS[@]}" "$ROOT/bench/pair_names.c" "$TMP/a.o" "$TMP/b.o" "$ROOT/src/siphash.c" \
    -o "$TMP/pair_names"

echo "A = $1, B = $2"
for set in "${SETS[@]}"; do
    "$TMP/pair_names" "$ROUNDS" "$set"
done
