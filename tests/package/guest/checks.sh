#!/bin/bash
# checks.sh - runs inside the booted test system (tests/package/run), as
# root from synchmess-package-test.service. One line per check on stdout:
#   CHECK <name> PASS
#   CHECK <name> FAIL <reason>
# then SYNCHMESS-GUEST-DONE. Diagnostics go to stdout as "# ..." lines.
# The order matters: the last checks remove and purge the package.
set -u
dir=/usr/local/lib/synchmess-test
dev=/dev/synch
user=nobody
export LD_LIBRARY_PATH=$dir/lib

uptime() { cut -d' ' -f1 /proc/uptime; }
pass() { echo "CHECK $1 PASS"; echo "# $1 done at $(uptime) s"; }
fail() { local name=$1; shift; echo "CHECK $name FAIL $*"; echo "# $name done at $(uptime) s"; }
as_user() { runuser -u "$user" -- "$@"; }
diag() { "$@" 2>&1 | sed 's/^/# /'; }

# wait_for SECONDS COMMAND...: until COMMAND succeeds (0.2 s steps).
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do ((SECONDS < deadline)) || return 1; sleep 0.2; done
}
node_is() { [[ -c $1 && $(stat -c %a "$1") == "$2" ]]; }
main_pid() { systemctl show -p MainPID --value "$1"; }
# status_field PID NAME: the value of NAME: in /proc/PID/status.
status_field() { awk -v k="$2:" '$1 == k {print $2; exit}' "/proc/$1/status" 2>/dev/null; }
# exposure UNIT: the number systemd-analyze security prints for it.
exposure() {
  systemd-analyze security "$1" 2>&1 | tr -d '\r' |
    sed -nE 's/.*Overall exposure level for [^:]+: ([0-9]+\.[0-9]+).*/\1/p' | tail -n 1
}
# Whether the unit's main process is a new one (not OLD_PID) and serves.
restarted() { local p; p=$(main_pid synchmess.service); [[ $p != 0 && $p != "$1" ]] && node_is $dev/synchmess 444; }
service_diag() {
  diag systemctl status --no-pager -n 0 synchmess.service synchmess-fuse.service
  diag journalctl -b --no-pager -o short-monotonic -n 25 _SYSTEMD_UNIT=synchmess.service + \
    _SYSTEMD_UNIT=synchmess-fuse.service + SYSLOG_IDENTIFIER=synchmessd
  diag ls -la "$dev"
}

echo "# checks start at $(uptime) s"

if systemctl is-active --quiet synchmess.service; then pass service_active
else fail service_active "synchmess.service is $(systemctl is-active synchmess.service)"; service_diag; fi

if systemctl is-enabled --quiet synchmess.service; then pass service_enabled
else fail service_enabled "synchmess.service is $(systemctl is-enabled synchmess.service)"; fi

# Loaded at boot through the package's modules-load.d entry (not only by
# the daemon's own modprobe).
if grep -q '^cuse ' /proc/modules && [[ -c /dev/cuse ]] &&
   journalctl -b -t systemd-modules-load --no-pager | grep -q "Inserted module 'cuse'"; then
  pass cuse_loaded_at_boot
else
  fail cuse_loaded_at_boot "cuse not loaded by systemd-modules-load ($(grep -c '^cuse ' /proc/modules) loaded)"
  diag journalctl -b --no-pager -o short-monotonic -g 'cuse|modules-load'
fi

if out=$(systemd-analyze verify --man=no synchmess.service synchmess-fuse.service 2>&1) && [[ -z $out ]]; then
  pass units_verify
else fail units_verify "systemd-analyze verify: $(tr '\n' ' ' <<<"$out")"; fi

# The CUSE unit's exposure as the booted system rates it (the FUSE unit's
# is printed for the record: it keeps the host's mount namespace).
cuse_exposure=$(exposure synchmess.service)
echo "# systemd-analyze security: synchmess.service ${cuse_exposure:-?}, synchmess-fuse.service $(exposure synchmess-fuse.service)"
if [[ -n $cuse_exposure ]] && awk -v e="$cuse_exposure" 'BEGIN {exit !(e <= 2.0)}'; then
  pass cuse_unit_exposure_at_most_2
else
  fail cuse_unit_exposure_at_most_2 "exposure '${cuse_exposure}'"
  diag systemd-analyze security synchmess.service
fi

# The CUSE daemon has its own mount namespace (ProtectSystem= and friends).
pid=$(main_pid synchmess.service)
if [[ $pid != 0 && -n $(readlink "/proc/$pid/ns/mnt") && $(readlink "/proc/$pid/ns/mnt") != "$(readlink /proc/1/ns/mnt)" ]]; then
  pass cuse_own_mount_namespace
else fail cuse_own_mount_namespace "synchmessd (pid $pid) shares PID 1's mount namespace"; fi

# The user and the capabilities the unit promises: synchmess, none at all,
# no_new_privs, a seccomp filter; /dev/cuse is the synchmess group's.
uid=$(id -u synchmess 2>/dev/null) gid=$(id -g synchmess 2>/dev/null)
read -r -a uids <<<"$(grep '^Uid:' "/proc/$pid/status" 2>/dev/null | cut -f2-)"
read -r -a gids <<<"$(grep '^Gid:' "/proc/$pid/status" 2>/dev/null | cut -f2-)"
caps="CapInh=$(status_field "$pid" CapInh) CapPrm=$(status_field "$pid" CapPrm) CapEff=$(status_field "$pid" CapEff) CapBnd=$(status_field "$pid" CapBnd) CapAmb=$(status_field "$pid" CapAmb)"
echo "# synchmessd (CUSE, pid $pid): Uid ${uids[*]:-?} Gid ${gids[*]:-?} $caps NoNewPrivs=$(status_field "$pid" NoNewPrivs) Seccomp=$(status_field "$pid" Seccomp)"
if [[ -n $uid && ${#uids[@]} == 4 && ${#gids[@]} == 4 && $uid != 0 ]] &&
   [[ ${uids[*]} == "$uid $uid $uid $uid" && ${gids[*]} == "$gid $gid $gid $gid" ]] &&
   [[ $caps == "CapInh=0000000000000000 CapPrm=0000000000000000 CapEff=0000000000000000 CapBnd=0000000000000000 CapAmb=0000000000000000" ]] &&
   [[ $(status_field "$pid" NoNewPrivs) == 1 && $(status_field "$pid" Seccomp) == 2 ]]; then
  pass cuse_daemon_user_synchmess_no_capabilities
else fail cuse_daemon_user_synchmess_no_capabilities "uid ${uids[*]:-?} (synchmess is ${uid:-missing}), $caps"; fi
if [[ $(stat -c '%G %a' /dev/cuse 2>&1) == "synchmess 660" ]]; then pass dev_cuse_group_synchmess_0660
else fail dev_cuse_group_synchmess_0660 "/dev/cuse: $(stat -c '%U:%G %a' /dev/cuse 2>&1)"; fi

if wait_for 10 node_is $dev/synchmess 444; then pass master_char_device_0444
else fail master_char_device_0444 "$(stat -c '%F %a' $dev/synchmess 2>&1)"; service_diag; fi

if out=$(as_user timeout 30 "$dir/synchmess-package-probe" $dev 7 2>&1) && node_is $dev/synchmess7 666; then
  pass user_installs_group_0666
else fail user_installs_group_0666 "$out; $(stat -c '%F %a' $dev/synchmess7 2>&1)"; service_diag; fi

if [[ -x $dir/synchmess-integration ]]; then
  if as_user timeout 400 "$dir/synchmess-integration" --dev-dir $dev --transport cuse >/tmp/integration.log 2>&1; then
    pass integration_suite_as_user
  else
    fail integration_suite_as_user "exit $? (log below)"; diag tail -n 40 /tmp/integration.log
  fi
  echo "# integration: $(tail -n 1 /tmp/integration.log)"
else fail integration_suite_as_user "synchmess-integration was not built (copied nothing)"; fi

# The installed wrapper and preload library: fsync() on a CUSE group device.
if [[ -x $dir/fsync-client ]]; then
  if out=$(as_user timeout 60 synchmess-fsync "$dir/fsync-client" --dev-dir $dev 2>&1); then
    pass fsync_wrapper_as_user
  else fail fsync_wrapper_as_user "exit $?: $(tail -n 5 <<<"$out" | tr '\n' ' ')"; fi
else fail fsync_wrapper_as_user "fsync-client was not built (copied nothing)"; fi

# The unit's limits reach the daemon, and it stays within them after the
# suite (RSS, threads, fds for the record); the watchdog runs.
pid=$(main_pid synchmess.service)
rss_kib=$(status_field "$pid" VmRSS)
threads=$(status_field "$pid" Threads)
fds=$(find "/proc/$pid/fd" -mindepth 1 2>/dev/null | wc -l)
nofile=$(awk '/^Max open files/ {print $4}' "/proc/$pid/limits" 2>/dev/null)
props=$(systemctl show -p MemoryMax -p TasksMax -p LimitNOFILE -p WatchdogUSec -p Restart synchmess.service | tr '\n' ' ')
memory_max=$(systemctl show -p MemoryMax --value synchmess.service)
cgroup=$(systemctl show -p ControlGroup --value synchmess.service)
cg_mem_max=$(cat "/sys/fs/cgroup$cgroup/memory.max" 2>/dev/null)
echo "# limits: $props; cgroup memory.max $cg_mem_max; daemon: VmRSS ${rss_kib:-?} KiB, $threads threads, $fds fds, nofile $nofile"
if [[ $memory_max =~ ^[0-9]+$ && $cg_mem_max == "$memory_max" && $nofile == 1024 ]] &&
   ((memory_max <= 256 * 1024 * 1024 && rss_kib * 1024 < memory_max && threads < 256 && fds < nofile)) &&
   [[ $props == *"TasksMax=256"* && $props == *"Restart=on-failure"* ]] &&
   journalctl -b --no-pager _PID="$pid" | grep -q 'systemd watchdog: pinging every'; then
  pass cuse_limits_and_watchdog
else fail cuse_limits_and_watchdog "$props; memory.max $cg_mem_max; RSS $rss_kib KiB, $threads threads, $fds/$nofile fds"; fi

# SIGKILL: Restart=on-failure starts a new daemon and the devices come back.
old_pid=$(main_pid synchmess.service)
out=
if [[ $old_pid =~ ^[1-9][0-9]*$ ]] && kill -KILL "$old_pid" && wait_for 60 restarted "$old_pid" && systemctl is-active --quiet synchmess.service &&
   out=$(as_user timeout 30 "$dir/synchmess-package-probe" $dev 5 2>&1); then
  pass sigkill_restarts_the_service
else fail sigkill_restarts_the_service "${out:-no new daemon serving within 60 s (MainPID $(main_pid synchmess.service), was $old_pid)}"; service_diag; fi
echo "# NRestarts $(systemctl show -p NRestarts --value synchmess.service)"

out=
if timeout 60 systemctl restart synchmess.service && systemctl is-active --quiet synchmess.service &&
   wait_for 10 node_is $dev/synchmess 444 &&
   out=$(as_user timeout 30 "$dir/synchmess-package-probe" $dev 3 2>&1); then
  pass restart_brings_devices_back
else fail restart_brings_devices_back "${out:-service or master device missing after restart}"; service_diag; fi

# The FUSE unit, selected by hand (Conflicts= stops the CUSE one): it must
# mount where everyone sees it, with root and exactly CAP_SYS_ADMIN +
# CAP_SYS_PTRACE, and serve installs (process_vm_writev from its helper),
# synchmessctl and the install tests of the suite, as nobody.
out=
if timeout 60 systemctl start synchmess-fuse.service && systemctl is-active --quiet synchmess-fuse.service &&
   ! systemctl is-active --quiet synchmess.service &&
   [[ $(stat -f -c %T $dev) == fuseblk || $(stat -f -c %T $dev) == fuse ]] &&
   out=$(as_user timeout 30 "$dir/synchmess-package-probe" $dev 4 2>&1); then
  pass fuse_unit_serves
else fail fuse_unit_serves "${out:-FUSE unit inactive, CUSE unit active, or $dev is not a FUSE mount ($(stat -f -c %T $dev 2>&1))}"; service_diag; fi
pid=$(main_pid synchmess-fuse.service)
caps="Uid=$(status_field "$pid" Uid) CapEff=$(status_field "$pid" CapEff) CapBnd=$(status_field "$pid" CapBnd) CapAmb=$(status_field "$pid" CapAmb) NoNewPrivs=$(status_field "$pid" NoNewPrivs) Seccomp=$(status_field "$pid" Seccomp)"
echo "# synchmessd (FUSE, pid $pid): $caps"
# CAP_SYS_PTRACE is bit 19, CAP_SYS_ADMIN bit 21.
if [[ $pid != 0 && $(readlink "/proc/$pid/ns/mnt") == "$(readlink /proc/1/ns/mnt)" ]] &&
   [[ $caps == "Uid=0 CapEff=0000000000280000 CapBnd=0000000000280000 CapAmb=0000000000000000 NoNewPrivs=1 Seccomp=2" ]]; then
  pass fuse_daemon_host_namespace_two_capabilities
else fail fuse_daemon_host_namespace_two_capabilities "pid $pid: $caps; mnt ns $(readlink "/proc/$pid/ns/mnt") vs PID 1's $(readlink /proc/1/ns/mnt)"; fi
ctl() { as_user timeout 30 synchmessctl --master=$dev/synchmess "$@"; }
if ctl_out=$(ctl install 9 2>&1 && ctl send 9 hello-fuse 2>&1 && ctl recv 9 2>&1) && grep -q 'hello-fuse' <<<"$ctl_out"; then
  pass fuse_unit_synchmessctl_as_user
else fail fuse_unit_synchmessctl_as_user "$(tr '\n' ' ' <<<"$ctl_out")"; service_diag; fi
if [[ -x $dir/synchmess-integration ]]; then
  if as_user timeout 300 "$dir/synchmess-integration" --dev-dir $dev --transport fuse --filter install \
       >/tmp/integration-fuse.log 2>&1; then
    pass fuse_unit_install_tests_as_user
  else
    fail fuse_unit_install_tests_as_user "exit $? (log below)"; diag tail -n 40 /tmp/integration-fuse.log
  fi
  echo "# integration (fuse, --filter install): $(tail -n 1 /tmp/integration-fuse.log)"
else fail fuse_unit_install_tests_as_user "synchmess-integration was not built (copied nothing)"; fi

# Back to CUSE (Conflicts= stops the FUSE unit, which unmounts).
out=
if timeout 60 systemctl start synchmess.service && ! systemctl is-active --quiet synchmess-fuse.service &&
   wait_for 10 node_is $dev/synchmess 444 &&
   out=$(as_user timeout 30 "$dir/synchmess-package-probe" $dev 6 2>&1); then
  pass back_to_cuse_unit
else fail back_to_cuse_unit "${out:-CUSE unit not serving after the FUSE unit}"; service_diag; fi

# dpkg rather than apt-get: the same maintainer scripts, without apt's
# cache building, which is slow under emulation.
out=$(timeout 120 dpkg -r synchmess 2>&1)
rc=$?
if ((rc == 0)) && ! systemctl is-active --quiet synchmess.service && wait_for 10 test ! -e $dev/synchmess &&
   ! compgen -G "$dev/synchmess*" >/dev/null; then
  pass remove_stops_service_and_devices
else fail remove_stops_service_and_devices "dpkg -r exit $rc; $(find $dev 2>&1 | tr '\n' ' ')"; diag tail -n 20 <<<"$out"; fi

out=$(timeout 120 dpkg -P synchmess synchmess-dev 2>&1)
rc=$?
left=$(find / -xdev \( -path /proc -o -path /sys -o -path "$dir" \) -prune -o \
  -iname '*synchmess*' ! -name synchmess-package-test.service -print 2>/dev/null)
if ((rc == 0)) && [[ -z $left ]] && ! dpkg-query -W synchmess >/dev/null 2>&1; then
  pass purge_leaves_nothing
else fail purge_leaves_nothing "dpkg -P exit $rc; left: $(tr '\n' ' ' <<<"$left")"; diag tail -n 20 <<<"$out"; fi

# The postinst enables the unit for the running kernel and says which:
# synchmess.service here (CUSE), synchmess-fuse.service once cuse is
# unloaded and cannot be loaded (a kernel without CUSE).
deb=$(compgen -G "$dir/debs/synchmess_*.deb" | head -n 1)
t=$SECONDS
out=$(timeout 180 dpkg -i "$deb" 2>&1)
rc=$?
echo "# postinst with cuse ($((SECONDS - t)) s): $(grep 'synchmess:' <<<"$out" | tr '\n' ' ')"
if ((rc == 0)) && grep -q 'this kernel has CUSE.*: enabled synchmess.service' <<<"$out" &&
   systemctl is-enabled --quiet synchmess.service && ! systemctl is-enabled --quiet synchmess-fuse.service &&
   systemctl is-active --quiet synchmess.service && wait_for 10 node_is $dev/synchmess 444; then
  pass postinst_picks_cuse_unit
else fail postinst_picks_cuse_unit "dpkg -i exit $rc"; diag tail -n 20 <<<"$out"; service_diag; fi
timeout 120 dpkg -P synchmess >/dev/null 2>&1

echo 'install cuse /bin/false' >/etc/modprobe.d/synchmess-test-no-cuse.conf
wait_for 20 rmmod cuse 2>/dev/null
t=$SECONDS
out=$(timeout 180 dpkg -i "$deb" 2>&1)
rc=$?
echo "# postinst without cuse ($((SECONDS - t)) s): $(grep 'synchmess:' <<<"$out" | tr '\n' ' ')"
if ((rc == 0)) && [[ ! -e /sys/class/misc/cuse ]] && grep -q 'no CUSE.*: enabled synchmess-fuse.service' <<<"$out" &&
   systemctl is-enabled --quiet synchmess-fuse.service && ! systemctl is-enabled --quiet synchmess.service &&
   systemctl is-active --quiet synchmess-fuse.service &&
   [[ $(stat -f -c %T $dev) == fuseblk || $(stat -f -c %T $dev) == fuse ]] &&
   out=$(as_user timeout 30 "$dir/synchmess-package-probe" $dev 8 2>&1); then
  pass postinst_picks_fuse_unit_without_cuse
else fail postinst_picks_fuse_unit_without_cuse "dpkg -i exit $rc; cuse $(test -e /sys/class/misc/cuse && echo still loaded)"; diag tail -n 20 <<<"$out"; service_diag; fi
# No purge here: the guest powers off next.
rm -f /etc/modprobe.d/synchmess-test-no-cuse.conf
echo "# systemd reloads during the checks: $(journalctl -b --no-pager -t systemd -g '^Reloading' 2>/dev/null | grep -c Reloading)"

echo "# checks end at $(uptime) s"
echo SYNCHMESS-GUEST-DONE
