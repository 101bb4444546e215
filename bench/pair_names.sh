#!/bin/bash
# bench/pair_names.sh - two versions of the matcher, timed in one process.
#
#   bench/pair_names.sh [-r ROUNDS] [-s SET]... A B
#
# A and B are each a version of the matcher: a names.c file or a git
# revision (its src/names.c). Since the substring index moved out of names.c,
# a version is names.c with names_sub.c and names_int.h: taken from the
# revision when it has them, or from beside the file when it includes
# names_int.h. Both versions are compiled (-O3, as the Release build) into
# one pair_names binary, with B's external symbols renamed B_* (every
# sd_names_* and sd__names_* its sources name); it checks that both answer
# every name alike, then times batches of 1000 lookups of each in turn
# (pair_names.c). SET is synth-mix (default), synth-even or refilter; -s may
# be given more than once. ROUNDS (default 40) rounds of 20 batch pairs each.
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

# fetch VERSION DIR: the version's sources into DIR (names.c, and
# names_sub.c and names_int.h when it has them).
fetch() {
    mkdir "$2"
    if [ -f "$1" ]; then
        cp "$1" "$2/names.c"
        if grep -q '#include "names_int.h"' "$1"; then
            cp "$(dirname "$1")/names_sub.c" "$(dirname "$1")/names_int.h" "$2/"
        fi
    elif git -C "$ROOT" rev-parse -q --verify "$1^{commit}" >/dev/null; then
        git -C "$ROOT" show "$1:src/names.c" >"$2/names.c"
        if git -C "$ROOT" cat-file -e "$1:src/names_sub.c" 2>/dev/null; then
            git -C "$ROOT" show "$1:src/names_sub.c" >"$2/names_sub.c"
            git -C "$ROOT" show "$1:src/names_int.h" >"$2/names_int.h"
        fi
    else
        echo "$0: $1: neither a file nor a revision" >&2
        exit 2
    fi
}
fetch "$1" "$TMP/a"
fetch "$2" "$TMP/b"

CC=${CC:-cc}
CFLAGS=(-O3 -DNDEBUG -std=gnu11 -Wall -Wextra -I"$ROOT/src" -I"$ROOT/bench" "-DSD_SOURCE_DIR=\"$ROOT\"")
RENAME=()
for sym in $(cat "$TMP"/b/* | grep -oE '\bsd__?names_[a-z0-9_]+' | sort -u); do
    RENAME+=("-D$sym=B_$sym")
done
# Each file of a version's directory, so that its own names_int.h is the one included.
for c in "$TMP"/a/*.c; do
    "$CC" "${CFLAGS[@]}" -c "$c" -o "${c%.c}.o"
done
for c in "$TMP"/b/*.c; do
    "$CC" "${CFLAGS[@]}" "${RENAME[@]}" -c "$c" -o "${c%.c}.o"
done
"$CC" "${CFLAGS[@]}" "$ROOT/bench/pair_names.c" "$TMP"/a/*.o "$TMP"/b/*.o "$ROOT/src/siphash.c" \
    -o "$TMP/pair_names"

echo "A = $1 ($(cd "$TMP/a" && echo *.c)), B = $2 ($(cd "$TMP/b" && echo *.c))"
for set in "${SETS[@]}"; do
    "$TMP/pair_names" "$ROUNDS" "$set"
done
