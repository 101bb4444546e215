#!/usr/bin/env bash
# Builds the .deb from this tree with Debian's tools (dpkg-buildpackage,
# debhelper's cmake build system) and installs it into a clean Debian 12
# root made with debootstrap (minbase, from deb.debian.org), then runs
# `slowdown --version` there and checks what the package put in place.
#
# The clean root is made once and cached (SD_DEB_ROOT, default
# /var/cache/slowdown-test/bookworm); each run works on a fresh copy of it,
# with the apt archive cache shared between runs. Skips (exit 77) unless
# SD_TEST_DEB=1; needs root. Packages for
# packaging (debhelper, debootstrap, ...) are installed here, not by
# scripts/deps.sh.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
cache=${SD_DEB_CACHE:-/var/cache/slowdown-test}
root=${SD_DEB_ROOT:-$cache/bookworm}
mirror=${SD_DEB_MIRROR:-http://deb.debian.org/debian}
start=$(date +%s)

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
[ "${SD_TEST_DEB:-0}" = 1 ] || skip "set SD_TEST_DEB=1 to build and test the .deb (its result is not yet part of CI)"
[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, chroot)"

need=(debhelper debootstrap dpkg-dev fakeroot cmake pkg-config libpcap-dev libnetfilter-queue-dev libmnl-dev
      libssl-dev libcurl4-openssl-dev)
missing=()
for p in "${need[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "test-deb: installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

work=$(mktemp -d /tmp/sd-deb.XXXXXX)
chroot_dir=$work/root
cleanup() {
    for m in var/cache/apt/archives proc dev; do
        mountpoint -q "$chroot_dir/$m" 2>/dev/null && umount -l "$chroot_dir/$m"
    done
    rm -rf "$work"
}
trap cleanup EXIT

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

# 2. A clean Debian 12 root, made once.
if [ ! -e "$root/.complete" ]; then
    command -v debootstrap >/dev/null || fail "no debootstrap"
    rm -rf "$root"
    mkdir -p "$cache"
    echo "test-deb: debootstrap bookworm into $root (once)"
    debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
        { tail -20 "$work/debootstrap.log"; fail "debootstrap"; }
    touch "$root/.complete"
fi

# 3. Install it into a fresh copy of that root, dependencies from the mirror.
cp -a "$root" "$chroot_dir"
mkdir -p "$cache/archives/partial"
mount --bind "$cache/archives" "$chroot_dir/var/cache/apt/archives"
mount -t proc proc "$chroot_dir/proc"
mount --bind /dev "$chroot_dir/dev"
cp /etc/resolv.conf "$chroot_dir/etc/resolv.conf"
cp "$deb" "$chroot_dir/tmp/"
in_root() { chroot "$chroot_dir" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
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
grep -q '^AmbientCapabilities=CAP_NET_ADMIN$' "$chroot_dir/lib/systemd/system/slowdown.service" || fail "unit"
[ -L "$chroot_dir/etc/systemd/system/multi-user.target.wants/slowdown.service" ] &&
    fail "the service was enabled on install"
in_root dpkg -s slowdown | grep -q '^Status: install ok installed' || fail "dpkg -s"
in_root apt-get purge -y -qq slowdown >>"$work/apt.log" 2>&1 || fail "purge"
[ ! -e "$chroot_dir/usr/bin/slowdown" ] || fail "purge left the binary"
echo "ok: purged"
echo "PASS ($(($(date +%s) - start)) s)"
