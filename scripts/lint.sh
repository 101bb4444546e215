#!/usr/bin/env bash
# Static analysis of src/: cppcheck 2.10 and clang-tidy-14, both with the
# compile commands of a CMake build directory (default: build). Exits 1 when
# either reports anything. Suppressions live in scripts/cppcheck.supp and
# .clang-tidy, each with its reason; fix findings rather than add to them.
#
#   scripts/lint.sh [BUILD_DIR]        (or: make lint)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
db="$build/compile_commands.json"
if [ ! -f "$db" ]; then
  echo "lint: $db not found (configure first: cmake -S . -B $build)" >&2
  exit 1
fi
# The compilation database names the generated presets_data.c: make it.
cmake --build "$build" --target sd_presets_data sd_bpf_data >/dev/null
# cppcheck names files as the database's path does (relative for a relative
# one): an absolute path keeps the filter and the suppressions matching.
db=$(cd "$build" && pwd)/compile_commands.json
jobs=$(nproc)
rc=0

echo "lint: cppcheck $(cppcheck --version | awk '{print $2}')"
if ! cppcheck --project="$db" --file-filter="$PWD/src/*" --platform=unix64 --library=posix --std=c11 \
     --enable=warning,style,performance,portability --inline-suppr \
     --suppressions-list=scripts/cppcheck.supp --quiet -j "$jobs" --error-exitcode=1; then
  rc=1
fi

tidy=$(command -v clang-tidy-14 || command -v clang-tidy || true)
if [ -z "$tidy" ]; then
  echo "lint: clang-tidy-14 not found" >&2
  exit 1
fi
echo "lint: $("$tidy" --version | grep -o 'LLVM version [0-9.]*')"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# One file per process, in parallel; findings are errors (.clang-tidy).
if ! ls src/*.c | xargs -P "$jobs" -n 1 "$tidy" -p "$build" --quiet >"$out" 2>/dev/null; then
  rc=1
fi
if grep -qE '(warning|error):' "$out"; then
  grep -E -A4 '(warning|error):' "$out"
  rc=1
fi

[ "$rc" -eq 0 ] && echo "lint: clean" || echo "lint: findings above"
exit "$rc"
