#!/usr/bin/env bash
# Builds the .deb from this tree with Debian's tools (dpkg-buildpackage,
# debhelper's cmake build system) and installs it into a clean Debian 12
# root made with debootstrap (minbase, from deb.debian.org), then runs
# `slowdown --version` there and checks what the package put in place.
#
# The clean root is made once and cached (SD_DEB_ROOT, default
# /var/cache/slowdown-test/bookworm); each run works on a fresh copy of it,
# with the apt archive cache shared between runs. Skips (exit 77) unless
# SD_TEST_DEB=1 (makes the root when it is not cached: debootstrap from the
# mirror, about 4.5 of the 9 minutes of a cold run on a loaded machine) or
# SD_TEST_DEB=cached (runs only when the root is cached, 3.5 to 6.5
# minutes; CI uses this); needs root. Packages for
# packaging (debhelper, debootstrap, ...) are installed here, not by
# scripts/deps.sh.
#
# Nothing is left mounted or behind, whatever happens: the script runs in a
# private mount namespace of its own (unshare), so the mounts it makes (proc
# and the apt archive in the root, and debootstrap's proc and sys) are never
# seen outside it and vanish with it even if it is killed; on exit, failure
# or interruption it ends what still runs in the root, unmounts, checks that
# nothing is mounted below its work directory and only then removes it (on
# one file system only). A work directory left by a killed run (its owner
# dead) is removed by the next run; a root debootstrap did not finish is
# never put in the cache.
set -euo pipefail
mode=${SD_TEST_DEB:-0}
if [ "${SD_DEB_UNSHARED:-}" != 1 ] && { [ "$mode" = 1 ] || [ "$mode" = cached ]; } && [ "$(id -u)" = 0 ]; then
    SD_DEB_UNSHARED=1 exec unshare --mount --propagation private bash "$0" "$@"
fi
src=$(cd "$(dirname "$0")/.." && pwd)
cache=${SD_DEB_CACHE:-/var/cache/slowdown-test}
root=${SD_DEB_ROOT:-$cache/bookworm}
mirror=${SD_DEB_MIRROR:-http://deb.debian.org/debian}
start=$(date +%s)

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
case $mode in
    1) ;;
    cached) [ -e "$root/.complete" ] ||
        skip "no cached Debian 12 root in $root (SD_TEST_DEB=1 makes it: debootstrap, a few minutes more)" ;;
    *) skip "set SD_TEST_DEB=1 (or =cached: only with a cached Debian 12 root) to build and test the .deb" ;;
esac
[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, chroot)"

need=(debhelper debootstrap dpkg-dev fakeroot cmake pkg-config libpcap-dev libnetfilter-queue-dev libmnl-dev
      libssl-dev libcurl4-openssl-dev libcap-ng-dev)
missing=()
for p in "${need[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "test-deb: installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ "${SD_DEB_UNSHARED:-}" = 1 ] || fail "unshare --mount did not work"

# mounts_below DIR: the mount points at or below DIR in this namespace.
mounts_below() { awk -v d="$1" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo; }
# Kills what runs with its root at or below $1 (started by this test: apt, dpkg, maintainer scripts).
kill_in_root() {
    local p r
    for p in /proc/[0-9]*; do
        r=$(readlink "$p/root" 2>/dev/null) || continue
        case $r in "$1" | "$1"/*) kill -KILL "${p#/proc/}" 2>/dev/null || true ;; esac
    done
}
# Unmounts everything below $1, deepest first; true when nothing is left.
unmount_below() {
    local m
    for _ in 1 2 3; do
        for m in $(mounts_below "$1" | sort -r); do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
        [ -z "$(mounts_below "$1")" ] && return 0
        sleep 1
    done
    return 1
}
# Removes $1 only when nothing is mounted below it, and never across file systems.
remove_tree() {
    [ -e "$1" ] || return 0
    if ! unmount_below "$1"; then
        echo "test-deb: still mounted below $1, not removed: $(mounts_below "$1" | tr '\n' ' ')" >&2
        return 1
    fi
    rm -rf --one-file-system "$1"
}

# Work directories of earlier runs that were killed (their owner is gone).
for old in /tmp/sd-deb.*; do
    [ -f "$old/owner" ] || continue
    kill -0 "$(cat "$old/owner")" 2>/dev/null && continue
    echo "test-deb: removing $old, left by a killed run"
    kill_in_root "$old"
    remove_tree "$old" || true
done

work=$(mktemp -d /tmp/sd-deb.XXXXXX)
echo $$ >"$work/owner"
chroot_dir=$work/root
boot=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    kill_in_root "$work"
    if [ -n "$boot" ]; then
        kill_in_root "$boot"
        remove_tree "$boot" || rc=1
    fi
    remove_tree "$work" || rc=1
    exit $rc
}
trap cleanup EXIT
trap 'echo "test-deb: interrupted" >&2; exit 130' INT TERM HUP

# 1. The package, from the files git knows (a copy: dpkg-buildpackage writes next to the tree).
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
mkdir "$work/slowdown-$version"
(cd "$src" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) |
    tar -xf - -C "$work/slowdown-$version"
(cd "$work/slowdown-$version" && env -u SD_TEST_DEB dpkg-buildpackage -b -us -uc -j2 >"$work/build.log" 2>&1) ||
    { tail -40 "$work/build.log"; fail "dpkg-buildpackage"; }
deb=$(ls "$work"/slowdown_"$version"_*.deb)
echo "ok: built $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB) in $(($(date +%s) - start)) s"
dpkg-deb -c "$deb" | awk '{print $6}' >"$work/contents"
for f in ./usr/bin/slowdown ./lib/systemd/system/slowdown.service ./etc/default/slowdown \
    ./usr/share/man/man1/slowdown-run.1.gz ./usr/share/man/man5/slowdown-policy.5.gz \
    ./usr/share/bash-completion/completions/slowdown; do
    grep -qx "$f" "$work/contents" || fail "the package lacks $f"
done
dpkg-deb -f "$deb" Depends | grep -q libcurl4 || fail "no shlibs dependency on libcurl4: $(dpkg-deb -f "$deb" Depends)"

# One run at a time uses the cache (its apt archive is shared, and apt locks
# it): other worktrees' runs wait here. Nothing started below inherits the
# lock, so a run killed midway never leaves it held.
mkdir -p "$cache"
exec 9>"$cache/.lock"
if ! flock -n 9; then
    echo "test-deb: waiting for another run to finish with $cache"
    flock -w 1200 9 || fail "$cache stayed locked for 20 minutes"
fi

# 2. A clean Debian 12 root, made once.
# (Made beside the cache and renamed into place once complete: an interrupted
# debootstrap leaves no half root that a later run would take as the cache.)
# An unreachable mirror is this machine's network, not the package: skipped.
mirror_up() { curl -sfI --max-time 30 "$mirror/dists/bookworm/Release" >/dev/null; }
if [ ! -e "$root/.complete" ]; then
    command -v debootstrap >/dev/null || fail "no debootstrap"
    mirror_up || skip "the Debian mirror $mirror is unreachable (debootstrap needs it)"
    for old in "$root".new.*; do # an earlier run's, killed while bootstrapping
        [ -e "$old" ] || continue
        kill -0 "${old##*.}" 2>/dev/null && continue
        kill_in_root "$old"
        remove_tree "$old" || true
    done
    boot=$root.new.$$
    t0=$(date +%s)
    echo "test-deb: debootstrap bookworm from $mirror (once, cached in $root)"
    debootstrap --variant=minbase bookworm "$boot" "$mirror" >"$work/debootstrap.log" 2>&1 9>&- ||
        { tail -20 "$work/debootstrap.log"; fail "debootstrap"; }
    unmount_below "$boot" || fail "debootstrap left mounts in $boot"
    touch "$boot/.complete"
    if [ -e "$root" ]; then remove_tree "$root" || fail "cannot replace the incomplete $root"; fi
    mv "$boot" "$root"
    boot=""
    echo "ok: debootstrap in $(($(date +%s) - t0)) s"
fi

# 3. Install it into a fresh copy of that root, dependencies from the mirror.
cp -a "$root" "$chroot_dir"
mkdir -p "$cache/archives/partial"
# (No /dev bind mount: debootstrap made the few device nodes apt needs, and cp -a copied them.)
mount --bind "$cache/archives" "$chroot_dir/var/cache/apt/archives"
mount -t proc proc "$chroot_dir/proc"
cp /etc/resolv.conf "$chroot_dir/etc/resolv.conf"
cp "$deb" "$chroot_dir/tmp/"
in_root() { chroot "$chroot_dir" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@" 9>&-; }
mirror_up || skip "the Debian mirror $mirror is unreachable (the .deb's dependencies come from it)"
in_root apt-get update -qq >"$work/apt.log" 2>&1 || { tail -20 "$work/apt.log"; fail "apt-get update in the root"; }
in_root apt-get install -y -qq --no-install-recommends "/tmp/$(basename "$deb")" >>"$work/apt.log" 2>&1 ||
    { tail -20 "$work/apt.log"; fail "apt-get install of the .deb in a clean root"; }
echo "ok: installed into a clean Debian $(cat "$chroot_dir/etc/debian_version") root"

# 4. It runs there.
out=$(in_root slowdown --version) || fail "slowdown --version in the root"
[ "$out" = "slowdown ${version%%-*}" ] || fail "slowdown --version said '$out'"
echo "ok: $out"
in_root slowdown presets >/dev/null || fail "slowdown presets in the root"
in_root slowdown run --print-rules --metrics 127.0.0.1:9469 | grep -q -- "-j NFQUEUE" || fail "run --print-rules"
in_root man -w slowdown-run >/dev/null 2>&1 || [ -e "$chroot_dir/usr/share/man/man1/slowdown-run.1.gz" ] ||
    fail "no man page"
unit=$chroot_dir/lib/systemd/system/slowdown.service
grep -q '^AmbientCapabilities=CAP_NET_ADMIN$' "$unit" || fail "unit"
grep -q '^ExecStart=/usr/bin/slowdown run ' "$unit" || fail "the unit does not run /usr/bin/slowdown: $(grep ^ExecStart= "$unit")"
grep -q '^EnvironmentFile=-/etc/default/slowdown$' "$unit" || fail "the unit's EnvironmentFile: $(grep ^Env "$unit")"
[ -L "$chroot_dir/etc/systemd/system/multi-user.target.wants/slowdown.service" ] &&
    fail "the service was enabled on install"
in_root dpkg -s slowdown | grep -q '^Status: install ok installed' || fail "dpkg -s"
in_root apt-get purge -y -qq slowdown >>"$work/apt.log" 2>&1 || fail "purge"
[ ! -e "$chroot_dir/usr/bin/slowdown" ] || fail "purge left the binary"
echo "ok: purged"
echo "PASS ($(($(date +%s) - start)) s)"
