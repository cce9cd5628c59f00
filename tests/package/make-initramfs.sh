#!/usr/bin/env bash
# make-initramfs.sh KVER OUT.cpio.gz
#
# A tiny initramfs whose only job is to mount the ext4 root disk (virtio,
# /dev/vda) and hand over to its /sbin/init (systemd). Debian's kernel has
# virtio-blk and ext4 as modules, so they are loaded here from the host's
# /lib/modules/KVER, in dependency order. busybox-static provides the shell.
set -euo pipefail
kver=${1:?usage: make-initramfs.sh KVER OUT.cpio.gz}
out=${2:?usage: make-initramfs.sh KVER OUT.cpio.gz}
# What to load; their dependencies come from modules.dep. crc32c_generic is
# what ext4 and jbd2 ask the crypto API for at mount time.
wanted=(virtio_pci virtio_blk crc32c_generic ext4)
[[ -x /bin/busybox ]] || { echo "make-initramfs: /bin/busybox missing (busybox-static)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{bin,dev,proc,sys,newroot,lib/modules}
cp /bin/busybox "$work/bin/busybox"
ln -s busybox "$work/bin/sh"
mknod -m 600 "$work/dev/console" c 5 1
# modules.dep: "path: dep1 dep2 ..."; a module's dependencies are loaded
# first (the list is deepest-last, so walk it backwards), each once.
declare -A seen=()
load_order=()
add_module() { # add_module PATH (relative to /lib/modules/KVER)
  local path=$1 line deps i
  [[ -n ${seen[$path]:-} ]] && return 0
  seen[$path]=1
  line=$(grep -m1 "^$path:" "/lib/modules/$kver/modules.dep") ||
    { echo "make-initramfs: $path not in modules.dep" >&2; exit 1; }
  read -ra deps <<<"${line#*:}"
  for ((i = ${#deps[@]} - 1; i >= 0; i--)); do add_module "${deps[i]}"; done
  load_order+=("$path")
}
for name in "${wanted[@]}"; do
  path=$(grep -m1 -E "/$name\.ko(\.xz|\.zst)?:" "/lib/modules/$kver/modules.dep") ||
    { echo "make-initramfs: no module $name for $kver" >&2; exit 1; }
  add_module "${path%%:*}"
done
for m in "${load_order[@]}"; do
  base=$(basename "$m"); base=${base%.xz}; base=${base%.zst}
  case $m in
    *.xz) xz -dc "/lib/modules/$kver/$m" >"$work/lib/modules/$base" ;;
    *.zst) zstd -qdc "/lib/modules/$kver/$m" >"$work/lib/modules/$base" ;;
    *) cp "/lib/modules/$kver/$m" "$work/lib/modules/$base" ;;
  esac
  echo "$base" >>"$work/lib/modules/order"
done

cat >"$work/init" <<'INIT'
#!/bin/sh
export PATH=/bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /lib/modules/order); do insmod /lib/modules/$m || echo "initramfs: insmod $m failed"; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if ! mount -t ext4 -o rw /dev/vda /newroot; then
  echo "initramfs: cannot mount /dev/vda"; poweroff -f
fi
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init "$@"
INIT
chmod 755 "$work/init"
(cd "$work" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -1 >"$out.tmp"
mv "$out.tmp" "$out"
