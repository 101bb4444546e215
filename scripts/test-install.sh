#!/usr/bin/env bash
# `cmake --install` of a build tree into a DESTDIR puts every file where the
# prefix says (binary, the man pages of man/, bash completion, the systemd
# unit, its defaults file, the docs), and the unit it installs is the one to
# run: its commands name the installed binary and defaults file, and
# `systemd-analyze verify` (when there) accepts it, its man pages included.
#
# Usage: test-install.sh BUILD_DIR (CTest install_tree passes its own).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-${SD_BUILD_DIR:?give the build directory}}
fail() { echo "FAIL: $*"; exit 1; }

cache_var() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }
prefix=$(cache_var CMAKE_INSTALL_PREFIX)
unitdir=$(cache_var SD_SYSTEMD_UNIT_DIR)
case $unitdir in /*) ;; *) unitdir=$prefix/$unitdir ;; esac
# GNUInstallDirs: /etc for the /usr prefix, PREFIX/etc otherwise (and absolute when given so).
sysconfdir=$(cache_var CMAKE_INSTALL_SYSCONFDIR)
case $sysconfdir in
    /*) ;;
    *) if [ "$prefix" = /usr ]; then sysconfdir=/$sysconfdir; else sysconfdir=$prefix/$sysconfdir; fi ;;
esac
[ -n "$prefix" ] || fail "no CMAKE_INSTALL_PREFIX in $build/CMakeCache.txt"

dest=$(mktemp -d /tmp/sd-install.XXXXXX)
trap 'rm -rf --one-file-system "$dest"' EXIT
DESTDIR=$dest cmake --install "$build" >"$dest.log" 2>&1 || { cat "$dest.log"; rm -f "$dest.log"; fail "cmake --install"; }
rm -f "$dest.log"
root=$dest$prefix
echo "installed with prefix $prefix, units in $unitdir, defaults in $sysconfdir/default"

# 1. Every file in its place.
[ -x "$root/bin/slowdown" ] || fail "no executable $prefix/bin/slowdown"
"$root/bin/slowdown" --version | grep -q '^slowdown ' || fail "the installed binary does not run"
for page in "$src"/man/*.[15]; do
    base=$(basename "$page")
    [ -f "$root/share/man/man${base##*.}/$base" ] || fail "man page $base not in $prefix/share/man/man${base##*.}"
done
comp=$root/share/bash-completion/completions/slowdown
[ -f "$comp" ] || fail "no bash completion in $prefix/share/bash-completion/completions"
bash -c ". '$comp' && complete -p slowdown" >/dev/null 2>&1 || fail "the completion does not define one for slowdown"
# It completes every command the binary lists (COMP_WORDS as bash would set them for "slowdown <TAB>").
cmds=$("$root/bin/slowdown" --help | awk '/^Commands:/ {on = 1; next} on && /^  [a-z]/ {print $1}')
[ -n "$cmds" ] || fail "no commands in 'slowdown --help'"
offered=$(bash -c ". '$comp'; COMP_WORDS=(slowdown ''); COMP_CWORD=1; _slowdown; echo \"\${COMPREPLY[*]}\"")
for c in $cmds; do
    case " $offered " in *" $c "*) ;; *) fail "the completion does not offer the command '$c'" ;; esac
done
unit=$dest$unitdir/slowdown.service
[ -f "$unit" ] || fail "no unit in $unitdir"
[ -f "$dest$sysconfdir/default/slowdown" ] || fail "no defaults file in $sysconfdir/default"
[ -f "$root/share/doc/slowdown/README.md" ] || fail "no README in $prefix/share/doc/slowdown"
stray=$(cd "$dest" && find . -type f | grep -Ev "^\.($prefix/(bin/slowdown|share/(man/man[15]/[a-z-]+\.[15]|bash-completion/completions/slowdown|doc/slowdown/[A-Za-z]+\.md))|$unitdir/slowdown\.service|$sysconfdir/default/slowdown)$" || true)
[ -z "$stray" ] || fail "installed outside the expected places: $stray"
echo "ok: binary, $(ls "$src"/man/*.[15] | wc -l) man pages, completion, unit, defaults, docs"

# 2. The unit runs what was installed, with the defaults file that was installed.
grep -q '@' "$unit" && fail "unsubstituted @VAR@ in the unit: $(grep '@' "$unit")"
for k in ExecStartPre ExecStart ExecStopPost; do
    grep -Eq "^$k=\+?$prefix/bin/slowdown run " "$unit" || fail "$k does not run $prefix/bin/slowdown: $(grep "^$k=" "$unit")"
done
grep -qx "EnvironmentFile=-$sysconfdir/default/slowdown" "$unit" || fail "EnvironmentFile: $(grep '^EnvironmentFile' "$unit")"
grep -qx 'AmbientCapabilities=CAP_NET_ADMIN' "$unit" || fail "no AmbientCapabilities=CAP_NET_ADMIN"
grep -qx 'CapabilityBoundingSet=CAP_NET_ADMIN' "$unit" || fail "the bounding set is not CAP_NET_ADMIN alone"
echo "ok: the unit runs $prefix/bin/slowdown with $sysconfdir/default/slowdown"

# 3. systemd's own check, on this host's systemd. verify requires the
# commands to exist, so it reads a copy whose binary path points into the
# DESTDIR (the only change), and finds the man pages of Documentation= there.
if command -v systemd-analyze >/dev/null && [ -e /lib/systemd/system/sysinit.target ]; then
    mkdir "$dest/verify"
    sed "s#$prefix/bin/slowdown#$root/bin/slowdown#g" "$unit" >"$dest/verify/slowdown.service"
    man=yes
    command -v man >/dev/null || { man=no; echo "note: no man, Documentation= not checked"; }
    out=$(cd "$dest/verify" && MANPATH=$root/share/man systemd-analyze verify --man=$man ./slowdown.service 2>&1) ||
        fail "systemd-analyze verify: $out"
    [ -z "$out" ] || fail "systemd-analyze verify warns: $out"
    echo "ok: systemd-analyze verify ($(systemd-analyze --version | head -1))"
else
    echo "note: no systemd-analyze, the unit is not verified"
fi
echo PASS
