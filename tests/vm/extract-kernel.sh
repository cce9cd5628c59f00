#!/bin/bash
# tests/vm/extract-kernel.sh OUT_DIR [VMLINUZ]
#
# Leaves the uncompressed ELF kernel in OUT_DIR/vmlinux and prints its path.
# VMLINUZ defaults to /boot/vmlinuz-VER of the newest kernel that has a cuse
# module (SYNCHMESS_VM_KERNEL=VER picks another).  Cached: a second call with
# the same source does nothing (OUT_DIR/vmlinux.source records the source
# path, size and mtime).  Installs linux-image-amd64 and xz-utils if missing.
#
# Method: a bzImage carries its kernel as a compressed payload after the
# setup code; find each xz stream magic (FD 37 7A 58 5A 00) in the file, try
# to decompress from there, and keep the first result that is an ELF file.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

(($# >= 1 && $# <= 2)) || { echo "usage: $0 OUT_DIR [VMLINUZ]" >&2; exit 2; }
out_dir=$1
vm_ensure_packages xz-utils
if (($# == 2)); then
  vmlinuz=$2
else
  vm_ensure_packages linux-image-amd64
  vmlinuz=/boot/vmlinuz-$(vm_kernel_version)
fi
[[ -r $vmlinuz ]] || vm_die "cannot read $vmlinuz"
mkdir -p "$out_dir"
out_dir=$(cd "$out_dir" && pwd)
vm_lock "$out_dir"

source_id="$(readlink -f "$vmlinuz") $(stat -L -c '%s %Y' "$vmlinuz")"
if [[ -s $out_dir/vmlinux && -f $out_dir/vmlinux.source &&
      $(<"$out_dir/vmlinux.source") == "$source_id" ]]; then
  printf '%s\n' "$out_dir/vmlinux"
  exit 0
fi

is_elf() { [[ $(head -c 4 "$1" | od -An -tx1 | tr -d ' \n') == 7f454c46 ]]; }

tmp=$(mktemp "$out_dir/vmlinux.XXXXXX")
trap 'rm -f "$tmp"' EXIT
found=
# Byte offsets (0-based) of every xz magic in the image.
while IFS=: read -r offset _; do
  # xz complains about the bytes after the stream: the output is what counts.
  tail -c "+$((offset + 1))" "$vmlinuz" | xz -dc >"$tmp" 2>/dev/null || true
  if [[ -s $tmp ]] && is_elf "$tmp"; then
    found=$offset
    break
  fi
done < <(LC_ALL=C grep -obUaP '\xfd\x37\x7a\x58\x5a\x00' "$vmlinuz" || true)
[[ -n $found ]] || vm_die "no xz-compressed ELF payload found in $vmlinuz"

chmod 0644 "$tmp"
mv -f "$tmp" "$out_dir/vmlinux"
printf '%s\n' "$source_id" >"$out_dir/vmlinux.source"
printf '%s\n' "$out_dir/vmlinux"
