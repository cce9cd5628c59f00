#!/usr/bin/env bash
# make-rootfs.sh CACHE_DIR
#
# Makes (once) a minimal Debian 12 root filesystem with systemd and udev,
# plus the runtime libraries the synchmess packages depend on, and keeps it
# as CACHE_DIR/rootfs.tar. A later run with the same package list reuses
# the tarball; a changed list rebuilds it. Needs root and debootstrap
# (installed from Debian's mirror when missing).
set -euo pipefail

cache=${1:?usage: make-rootfs.sh CACHE_DIR}
mirror=${SYNCHMESS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm

# systemd-sysv/udev/kmod: a booted system that loads cuse and applies the
# udev rule. fuse3, libfuse3-3, libfmt9: what synchmess depends on, so that
# installing the .debs later needs no network (linux-libc-dev: synchmess-dev).
include=systemd-sysv,udev,kmod,fuse3,libfuse3-3,libfmt9,linux-libc-dev

mkdir -p "$cache"
tar_file=$cache/rootfs.tar
stamp=$cache/rootfs.stamp
want="$suite $mirror $include"
if [[ -f $tar_file && -f $stamp && $(<"$stamp") == "$want" ]]; then
  echo "rootfs: cached $tar_file"
  exit 0
fi

if ! command -v debootstrap >/dev/null; then
  apt-get update
  apt-get install -y --no-install-recommends debootstrap
fi

work=$(mktemp -d "$cache/rootfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
debootstrap --variant=minbase --include="$include" "$suite" "$work/root" "$mirror"

# Keep the tarball small: package caches and apt lists are not needed.
rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"*
tar -C "$work/root" --numeric-owner -cf "$tar_file.tmp" .
mv "$tar_file.tmp" "$tar_file"
printf '%s' "$want" >"$stamp"
echo "rootfs: built $tar_file in $(( $(date +%s) - start )) s"
