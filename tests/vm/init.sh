#!/bin/busybox sh
# tests/vm/init.sh - /init of the VM harness guest (busybox ash, PID 1).
#
# Loads fuse.ko then cuse.ko, mounts proc, sysfs and devtmpfs, starts the
# daemon under test with --transport=cuse --foreground, waits (bounded) for
# /dev/synch/synchmess, then either runs one program (VM_MODE=run) or the
# CUSE suite (VM_MODE=suite).  Ends by printing SYNCHMESS-VM-EXIT=<status>
# and powering off; if anything goes wrong before that, PID 1 exits, the
# kernel panics (panic=-1 reboots, QEMU runs with -no-reboot) and the host
# reports a missing marker.  /vm/config (written by tests/vm/run) sets VM_*
# variables, the program's argv with `set --`, and vm_program_env.

/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mkdir -p /dev/shm /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t devpts devpts /dev/pts

# shellcheck source=/dev/null
. /vm/config

# uptime_ds: seconds since boot, in tenths.
uptime_ds() {
  read -r up _ </proc/uptime
  frac=${up#*.}
  echo $(( ${up%.*} * 10 + ${frac%?} ))
}

vm_finish() {
  echo "SYNCHMESS-VM-EXIT=$1"
  # Setting a tty attribute waits until the output has left the UART, so
  # the marker is not lost at power-off.
  stty -F /dev/console onlcr 2>/dev/null
  sleep 0.2
  poweroff -f
  exit "$1"
}

# setup_failed REASON: the guest could not get to the test itself.
setup_failed() {
  echo "SYNCHMESS-VM-SETUP-FAILED: $1"
  vm_finish 125
}

for m in fuse cuse; do
  if ! insmod /vm/modules/$m.ko; then
    setup_failed "insmod $m.ko failed"
  fi
done
[ -c /dev/cuse ] || setup_failed "/dev/cuse missing after insmod"

# The daemon's output goes to the console with a prefix, line by line
# through a FIFO (so that $! is the daemon's pid).
mkfifo /tmp/daemon.out
while IFS= read -r line; do echo "[synchmessd] $line"; done </tmp/daemon.out &
log_pid=$!
"$VM_DAEMON" --transport=cuse --foreground >/tmp/daemon.out 2>&1 </dev/null &
daemon_pid=$!
echo "vm-guest: started $VM_DAEMON (pid $daemon_pid)"

# running PID: true while PID exists and is not a zombie.
running() {
  [ -r "/proc/$1/stat" ] || return 1
  read -r _ _ state _ <"/proc/$1/stat"
  [ "$state" != Z ]
}

# wait_master: 0 when /dev/synch/synchmess is a char device, 1 on timeout
# (VM_DEV_WAIT seconds), 2 if the daemon exited first.
wait_master() {
  deadline=$(( $(uptime_ds) + VM_DEV_WAIT * 10 ))
  while [ "$(uptime_ds)" -lt "$deadline" ]; do
    [ -c /dev/synch/synchmess ] && return 0
    running "$daemon_pid" || return 2
    sleep 0.1
  done
  [ -c /dev/synch/synchmess ]
}

# daemon_reap: reap the exited daemon; sets daemon_text to how it ended.
daemon_reap() {
  wait "$daemon_pid"
  daemon_text="the daemon exited with status $?"
}

t0=$(uptime_ds)
wait_master
ready=$?
case $ready in
  0) now=$(uptime_ds)
     echo "vm-guest: /dev/synch/synchmess ready after $(( (now - t0) * 100 )) ms, $(( now / 10 )).$(( now % 10 )) s after boot" ;;
  1) echo "vm-guest: /dev/synch/synchmess did not appear within ${VM_DEV_WAIT} s" ;;
  2) daemon_reap; echo "vm-guest: /dev/synch/synchmess never appeared: $daemon_text" ;;
esac

if [ "$VM_MODE" = run ]; then
  [ "$ready" = 0 ] || setup_failed "the daemon did not create /dev/synch/synchmess"
  cd "$VM_CWD" 2>/dev/null || cd /
  echo "vm-guest: running $*"
  ( vm_program_env; exec "$@" ) </dev/null
  status=$?
  echo "vm-guest: program exited with status $status"
  if ! running "$daemon_pid"; then
    daemon_reap
    echo "vm-guest: note: $daemon_text while the program ran"
  fi
  vm_finish "$status"
fi

# ---- VM_MODE=suite ----
passed=0
failed=0
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }

# need NAME PATH...: fail NAME unless every PATH exists.
need() {
  name=$1; shift
  missing=
  for p in "$@"; do
    [ -e "$p" ] || missing="$missing $p"
  done
  [ -z "$missing" ] && return 0
  fail "$name" "missing (not built?):$missing"
  return 1
}

# alive NAME: fail NAME unless the daemon still runs.
alive() {
  running "$daemon_pid" && return 0
  daemon_reap
  fail "$1" "daemon not running ($daemon_text)"
  return 1
}

# step NAME TIMEOUT CMD...: run CMD bounded by TIMEOUT seconds.
step() {
  name=$1; secs=$2; shift 2
  echo "---- $name: $*"
  ( vm_program_env; exec timeout -s KILL "$secs" "$@" ) </dev/null
  rc=$?
  if [ "$rc" = 0 ]; then
    pass "$name"
  elif [ "$rc" = 137 ]; then
    fail "$name" "killed after ${secs} s (timeout)"
  else
    fail "$name" "exit status $rc"
  fi
}

if [ "$ready" = 0 ]; then
  pass daemon-start
else
  fail daemon-start "/dev/synch/synchmess is not a char device"
fi

# (a) real char devices: master minor 0, group 1 same major minor 1, no FUSE
# mount at /dev/synch.
if need char-devices "$VM_DEVCHECK" && alive char-devices; then
  step char-devices 60 "$VM_DEVCHECK" /dev/synch
fi

# (a2) on the fresh daemon, before the integration suite installs every
# group: the statistics of a group that is not installed fail, and asking
# does not install it.
if need stats-not-installed "$VM_CTL" && alive stats-not-installed; then
  echo "---- stats-not-installed: $VM_CTL stats 5"
  out=$("$VM_CTL" stats 5 2>&1); rc=$?
  out2=$("$VM_CTL" stats 5 --json 2>&1); rc2=$?
  case "$rc $rc2 $out $out2" in
    "1 1 synchmessctl: group 5 is not installed synchmessctl: group 5 is not installed") pass stats-not-installed ;;
    *) fail stats-not-installed "exit $rc/$rc2: $out / $out2" ;;
  esac
fi

# (b) the integration suite over CUSE.
if need integration "$VM_INTEGRATION" && alive integration; then
  step integration "$VM_STEP_TIMEOUT" "$VM_INTEGRATION" --dev-dir /dev/synch --transport cuse
fi

# (c) the fsync shim: fsync-client under LD_PRELOAD must exit 0.
if need fsync-shim "$VM_FSYNC_CLIENT" "$VM_FSYNC_SHIM" && alive fsync-shim; then
  step fsync-shim 120 env LD_PRELOAD="$VM_FSYNC_SHIM" "$VM_FSYNC_CLIENT" --dev-dir /dev/synch
fi

# (c2) a static client (LD_PRELOAD cannot reach it) under the synchmess-fsync
# wrapper, which runs it under the seccomp supervisor: fsync must flush.
if need fsync-static "$VM_FSYNC_WRAPPER" "$VM_FSYNC_SUPERVISE" "$VM_FSYNC_SHIM" \
     "$VM_FSYNC_STATIC" && alive fsync-static; then
  step fsync-static 120 "$VM_FSYNC_WRAPPER" "$VM_FSYNC_STATIC" --dev-dir /dev/synch \
    --require-supervisor
fi

# (c3) synchmessctl: every subcommand and the statistics over CUSE.  No
# udev here: give the master the rule's 0444 so the check's unprivileged
# command can open it (the groups stay 0600; the check opens them as root).
if need synchmessctl "$VM_CTL" "$VM_CTL_CHECK" /bin/bash && alive synchmessctl; then
  chmod 0444 /dev/synch/synchmess
  step synchmessctl "$VM_STEP_TIMEOUT" "$VM_CTL_CHECK" "$VM_BUILD_DIR" /dev/synch
fi

# (c4) the fast path over CUSE: it is taken (the library's log), fast and
# device clients mixed (with SIGKILLs), a device poller woken by a fast
# writer, and the integration suite again with its client under
# synchmess-fast.
if need fast-path "$VM_FAST_WRAPPER" "$VM_FAST_LIB" "$VM_FAST_MIXED" "$VM_FSYNC_SUPERVISE" &&
   alive fast-path; then
  export SYNCHMESS_DEV_DIR=/dev/synch
  echo "---- fast-path-taken: $VM_FAST_WRAPPER $VM_FAST_MIXED --dev-dir /dev/synch exec"
  out=$(SYNCHMESS_FAST_LOG=1 timeout -s KILL 60 "$VM_FAST_WRAPPER" "$VM_FAST_MIXED" --dev-dir /dev/synch exec 2>&1)
  echo "$out"
  case "$out" in
    *": on the shared ring"*) pass fast-path-taken ;;
    *) fail fast-path-taken "no fd took the fast path" ;;
  esac
  for mode in mixed kill poll; do
    alive "fast-$mode" && step "fast-$mode" 120 "$VM_FAST_WRAPPER" "$VM_FAST_MIXED" --dev-dir /dev/synch "$mode"
  done
  alive integration-fast && step integration-fast "$VM_STEP_TIMEOUT" "$VM_FAST_WRAPPER" "$VM_INTEGRATION" \
    --dev-dir /dev/synch --transport cuse
fi

# (d) SIGTERM: exit 0 within 10 s, and the master node disappears.
echo "---- sigterm: kill -TERM $daemon_pid"
if alive sigterm; then
  kill -TERM "$daemon_pid"
  ( sleep 10; kill -KILL "$daemon_pid" 2>/dev/null ) &
  watchdog=$!
  t0=$(uptime_ds)
  wait "$daemon_pid"
  rc=$?
  took=$(( $(uptime_ds) - t0 ))
  kill "$watchdog" 2>/dev/null
  # devtmpfs removes the node when the CUSE channel closes; allow 3 s.
  deadline=$(( $(uptime_ds) + 30 ))
  while [ -e /dev/synch/synchmess ] && [ "$(uptime_ds)" -lt "$deadline" ]; do
    sleep 0.1
  done
  if [ "$rc" != 0 ]; then
    fail sigterm "daemon exit status $rc after $took ds (137 = killed after 10 s)"
  elif [ -e /dev/synch/synchmess ]; then
    fail sigterm "exited 0 but /dev/synch/synchmess is still there"
  else
    echo "vm-guest: the daemon exited 0 $(( took * 100 )) ms after SIGTERM"
    pass sigterm
  fi
fi
# Let the daemon's last lines through (bounded: a child may hold the FIFO).
( sleep 2; kill "$log_pid" 2>/dev/null ) &
wait "$log_pid" 2>/dev/null

echo "$passed passed, $failed failed"
[ "$failed" = 0 ] && vm_finish 0
vm_finish 1
