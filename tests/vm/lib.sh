# shellcheck shell=bash
# tests/vm/lib.sh - helpers shared by the VM harness scripts (sourced, bash).
#
# Contract: defines functions only; sets no options and runs nothing when
# sourced.  Messages go to stderr with a "vm: " prefix.

vm_say() { printf 'vm: %s\n' "$*" >&2; }
vm_die() { printf 'vm: error: %s\n' "$*" >&2; exit 125; }

# vm_ensure_packages PKG...: install the Debian packages that are missing
# (apt-get update first, then apt-get install -y).  Retries while another apt
# holds the lock.  Needs root (or sudo) only when something is missing.
vm_ensure_packages() {
  local missing=() p
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$p")
    fi
  done
  ((${#missing[@]})) || return 0
  local sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null || vm_die "packages missing (${missing[*]}) and not root: install them first"
    sudo=(sudo -n)
  fi
  vm_say "installing ${missing[*]}"
  local try
  for try in 1 2 3 4 5 6 7 8 9 10; do
    if "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
       "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
         --no-install-recommends "${missing[@]}" >&2; then
      return 0
    fi
    vm_say "apt-get failed (another apt running?), retry $try in 10 s"
    sleep 10
  done
  vm_die "could not install ${missing[*]}"
}

# vm_kernel_version: print the newest kernel version that has both
# /boot/vmlinuz-VER and a cuse module under /lib/modules/VER (override with
# SYNCHMESS_VM_KERNEL=VER).
vm_kernel_version() {
  if [[ -n ${SYNCHMESS_VM_KERNEL:-} ]]; then
    printf '%s\n' "$SYNCHMESS_VM_KERNEL"
    return 0
  fi
  local f ver best=
  for f in /boot/vmlinuz-*; do
    [[ -e $f ]] || continue
    ver=${f#/boot/vmlinuz-}
    compgen -G "/lib/modules/$ver/kernel/fs/fuse/cuse.ko*" >/dev/null || continue
    best+="$ver"$'\n'
  done
  [[ -n $best ]] || vm_die "no /boot/vmlinuz-VER with /lib/modules/VER/kernel/fs/fuse/cuse.ko* (is linux-image-amd64 installed?)"
  printf '%s' "$best" | sort -V | tail -n 1
}

# vm_lock DIR: take an exclusive lock on DIR/.lock for the rest of the
# calling (sub)shell, so concurrent runs fill a shared cache safely.
vm_lock() {
  local fd
  exec {fd}>"$1/.lock"
  flock -w 600 "$fd" || vm_die "cannot lock $1/.lock"
}
