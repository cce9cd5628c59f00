#!/usr/bin/env bash
# packaging/build-deb.sh [--head] OUTDIR
#
# Builds the synchmess and synchmess-dev .debs into OUTDIR from a clean
# copy of the source tree, then checks them with lintian and fails on any
# error or warning. The copy holds the files git knows (tracked, and
# untracked ones that are not ignored, in their current state); --head
# takes HEAD's committed tree instead (git archive). The Debian version is
# the one in the top-level CMakeLists.txt's project(... VERSION x.y.z).
#
# Exit status: 0 built and lintian-clean, 3 built but lintian complained
# (the .debs are in OUTDIR), anything else: not built.
#
# Installs what the build needs from Debian when it is missing (one
# apt-get update, then apt-get install / build-dep). Needs root for that.
set -euo pipefail

usage() { echo "usage: $0 [--head] OUTDIR" >&2; exit 2; }
source_mode=worktree
outdir=
for arg in "$@"; do
  case $arg in
    --head) source_mode='head' ;;
    -*) usage ;;
    *) [[ -z $outdir ]] || usage; outdir=$arg ;;
  esac
done
[[ -n $outdir ]] || usage

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
say() { printf 'build-deb: %s\n' "$*" >&2; }
die() { printf 'build-deb: error: %s\n' "$*" >&2; exit 1; }

# --- build tools --------------------------------------------------------
apt_updated=
apt() { # apt-get with a wait for the dpkg lock and retries while it is busy
  local try
  for try in 1 2 3 4 5 6; do
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 "$@" && return 0
    say "apt-get $1 failed (lock busy?), retry $try in 10 s"
    sleep 10
  done
  die "apt-get $* failed"
}
apt_update_once() { [[ -n $apt_updated ]] || { apt update -qq; apt_updated=1; }; }
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  say "installing ${missing[*]}"
  apt_update_once
  apt install -y -qq --no-install-recommends "${missing[@]}"
}
ensure_packages build-essential dpkg-dev debhelper lintian git

# --- clean source tree -----------------------------------------------
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/synchmess-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=$work/synchmess
mkdir -p "$src"
if git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
  if [[ $source_mode == head ]]; then
    git -C "$repo" archive --format=tar HEAD | tar -x -C "$src"
  else
    # Deleted-but-tracked files are skipped.
    # shellcheck disable=SC2016
    (cd "$repo" && git ls-files -z --cached --others --exclude-standard |
      xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
      tar --null -T - -cf -) | tar -x -C "$src"
  fi
  commit=$(git -C "$repo" rev-parse --short HEAD)
  when=$(git -C "$repo" log -1 --format=%ct HEAD)
else
  [[ $source_mode == worktree ]] || die "--head needs a git checkout"
  tar -C "$repo" --exclude='./build*' --exclude=./out --exclude=./.git -cf - . | tar -x -C "$src"
  commit=unknown
  when=$(date +%s)
fi

version=$(sed -nE 's/^[[:space:]]*project\([[:space:]]*synchmess[[:space:]]+VERSION[[:space:]]+([0-9][0-9.]*)[[:space:];)].*/\1/p' \
  "$src/CMakeLists.txt" | head -n 1)
[[ -n $version ]] || die "no project(synchmess VERSION x.y.z) in CMakeLists.txt"

rm -rf "$src/debian"
cp -a "$src/packaging/debian" "$src/debian"
cat >"$src/debian/changelog" <<CHANGELOG
synchmess ($version) unstable; urgency=medium

  * Build of version $version (git $commit).

 -- SynchMess developers <synchmess@example.org>  $(LC_ALL=C date -R -u -d "@$when")
CHANGELOG

# --- build dependencies, build, lint -----------------------------------
if ! (cd "$src" && dpkg-checkbuilddeps >/dev/null 2>&1); then
  say "installing the missing build dependencies"
  apt_update_once
  apt build-dep -y -qq "$src"
fi

say "building synchmess $version (git $commit) in $src"
(cd "$src" && DEB_BUILD_OPTIONS="parallel=$(nproc) ${DEB_BUILD_OPTIONS:-}" \
  dpkg-buildpackage -b -us -uc) || die "dpkg-buildpackage failed"

arch=$(dpkg --print-architecture)
changes=$work/synchmess_${version}_${arch}.changes
[[ -f $changes ]] || die "no $changes"
rm -f "$outdir"/synchmess_*.deb "$outdir"/synchmess-dev_*.deb "$outdir"/synchmess_*.changes \
  "$outdir"/synchmess_*.buildinfo
cp "$work"/*.deb "$changes" "$work"/*.buildinfo "$outdir/"

say "lintian"
if ! lintian --fail-on error,warning --display-info "$outdir/$(basename "$changes")"; then
  say "error: lintian found errors or warnings (above)"
  exit 3
fi
say "lintian: no errors, no warnings"
ls -1 "$outdir"/*.deb
