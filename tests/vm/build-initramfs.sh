# shellcheck shell=bash
# tests/vm/build-initramfs.sh - initramfs pieces for the VM harness (sourced
# by ./run, bash).
#
# The kernel accepts several newc cpio archives concatenated, later entries
# overwriting earlier ones, so the initrd is three archives:
#   1. device nodes (/dev, /dev/console c 5 1), written by vm_cpio_nodes
#      without mknod, so no root is needed;
#   2. the cached base: busybox-static and fuse.ko/cuse.ko (vm_base_cpio);
#   3. the per-run payload: /init, /vm/config, binaries and their libraries.
# Every entry is owned by 0:0 in the archive whoever builds it.

# vm_cpio_entry NAME MODE_OCTAL RDEV_MAJOR RDEV_MINOR INO: one newc header for
# an entry without data (directory or device node) on stdout.
vm_cpio_entry() {
  local name=$1 mode=$((8#$2)) rmaj=$3 rmin=$4 ino=$5
  local namesize=$((${#name} + 1))
  # magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor,
  # rdevmajor, rdevminor, namesize, check
  printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
    "$ino" "$mode" 0 0 1 0 0 0 0 "$rmaj" "$rmin" "$namesize" 0
  printf '%s\0' "$name"
  # header (110 bytes) + name padded to a multiple of 4
  local pad=$(((4 - (110 + namesize) % 4) % 4))
  ((pad)) && head -c "$pad" /dev/zero
  return 0
}

# vm_cpio_nodes: the archive with /dev and /dev/console on stdout.
vm_cpio_nodes() {
  vm_cpio_entry dev 040755 0 0 1
  vm_cpio_entry dev/console 020600 5 1 2
  vm_cpio_entry TRAILER!!! 0 0 0 0
}

# vm_cpio_dir DIR: archive the tree under DIR (owner 0:0) on stdout.
vm_cpio_dir() {
  (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet)
}

# vm_base_cpio CACHE_DIR KVER: make sure CACHE_DIR/base-KVER.cpio exists and
# is current (busybox + modules), and print its path.
vm_base_cpio() {
  local cache=$1 kver=$2
  local moddir=/lib/modules/$kver/kernel/fs/fuse
  local busybox=/bin/busybox m f
  [[ -x $busybox ]] || vm_die "$busybox missing (busybox-static)"
  local id="layout=1 kver=$kver"
  for f in "$busybox" "$moddir"/fuse.ko* "$moddir"/cuse.ko*; do
    id+=" $f:$(stat -L -c '%s:%Y' "$f")"
  done
  local out=$cache/base-$kver.cpio
  if [[ -s $out && -f $out.id && $(<"$out.id") == "$id" ]]; then
    printf '%s\n' "$out"
    return 0
  fi
  local stage
  stage=$(mktemp -d "$cache/base-stage.XXXXXX")
  mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,proc,sys,tmp,run,root,etc,vm/modules}
  cp "$busybox" "$stage/bin/busybox"
  for m in fuse cuse; do
    f=$(compgen -G "$moddir/$m.ko*" | head -n 1) || true
    [[ -n $f ]] || vm_die "no $m module in $moddir"
    case $f in
      *.ko) cp "$f" "$stage/vm/modules/$m.ko" ;;
      *.ko.xz) xz -dc "$f" >"$stage/vm/modules/$m.ko" ;;
      *.ko.zst) zstd -qdc "$f" >"$stage/vm/modules/$m.ko" ;;
      *.ko.gz) gzip -dc "$f" >"$stage/vm/modules/$m.ko" ;;
      *) vm_die "unknown module format: $f" ;;
    esac
  done
  { vm_cpio_nodes; vm_cpio_dir "$stage"; } >"$out.tmp"
  rm -rf "$stage"
  mv -f "$out.tmp" "$out"
  printf '%s\n' "$id" >"$out.id"
  printf '%s\n' "$out"
}

# vm_is_elf FILE: true for an ELF file.
vm_is_elf() {
  [[ -f $1 && $(head -c 4 "$1" | od -An -tx1 | tr -d ' \n') == 7f454c46 ]]
}

# vm_ship STAGE HOSTPATH GUESTPATH: copy HOSTPATH (file or directory) to
# STAGE/GUESTPATH; for dynamic ELF files also the libraries and loader that
# ldd lists, at their own paths.
vm_ship() {
  local stage=$1 src=$2 dst=$3
  [[ -e $src ]] || vm_die "no such file: $src"
  [[ $dst == /* ]] || vm_die "guest path must be absolute: $dst"
  mkdir -p "$stage$(dirname "$dst")"
  if [[ -d $src ]]; then
    mkdir -p "$stage$dst"
    cp -rL "$src/." "$stage$dst/"
    return 0
  fi
  cp -L "$src" "$stage$dst"
  vm_ship_interpreter "$stage" "$src"
  vm_is_elf "$src" || return 0
  local line lib
  local out
  out=$(ldd "$src" 2>&1) || return 0   # static: "not a dynamic executable"
  while IFS= read -r line; do
    case $line in
      *"=> not found"*) vm_die "$src needs a library that is not found: ${line%% *}" ;;
      *"=> /"*) lib=${line#*=> }; lib=${lib%% (*} ;;
      [[:space:]]/*) lib=${line#"${line%%[![:space:]]*}"}; lib=${lib%% (*} ;;
      *) continue ;;
    esac
    [[ -e $stage$lib ]] && continue
    mkdir -p "$stage$(dirname "$lib")"
    cp -L "$lib" "$stage$lib"
  done <<<"$out"
}

# vm_ship_interpreter STAGE FILE: for a "#!" script, ship its interpreter
# (and, for "#!/usr/bin/env NAME", NAME from PATH), except /bin/sh, which
# the guest's busybox provides.
vm_ship_interpreter() {
  local stage=$1 src=$2 line interp arg
  [[ $(head -c 2 "$src") == '#!' ]] || return 0
  IFS= read -r line <"$src" || true
  read -r interp arg _ <<<"${line#\#!}"
  [[ -n $interp && $interp != /bin/sh && -x $interp ]] || return 0
  [[ -e $stage$interp ]] || vm_ship "$stage" "$interp" "$interp"
  if [[ $interp == */env && -n $arg ]]; then
    arg=$(command -v -- "$arg") || return 0
    [[ -e $stage$arg ]] || vm_ship "$stage" "$arg" "$arg"
  fi
  return 0
}

# vm_quote STRING: STRING as one single-quoted POSIX shell word.
vm_quote() {
  local s=${1//\'/\'\\\'\'}
  printf "'%s'" "$s"
}
