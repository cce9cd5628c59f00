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
service_diag() {
  diag systemctl status --no-pager -n 0 synchmess.service
  diag journalctl -b --no-pager -o short-monotonic -n 25 _SYSTEMD_UNIT=synchmess.service + SYSLOG_IDENTIFIER=synchmessd
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

if out=$(systemd-analyze verify --man=no synchmess.service 2>&1) && [[ -z $out ]]; then pass unit_verifies
else fail unit_verifies "systemd-analyze verify: $(tr '\n' ' ' <<<"$out")"; fi
echo "# $(systemd-analyze security synchmess.service 2>&1 | tail -n 1)"

# The unit must not get a mount namespace of its own (the FUSE transport's
# mount has to be visible to everyone).
pid=$(systemctl show -p MainPID --value synchmess.service)
if [[ $pid != 0 && $(readlink "/proc/$pid/ns/mnt") == "$(readlink /proc/1/ns/mnt)" ]]; then
  pass host_mount_namespace
else fail host_mount_namespace "synchmessd (pid $pid) is not in the host's mount namespace"; fi

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

out=
if timeout 60 systemctl restart synchmess.service && systemctl is-active --quiet synchmess.service &&
   wait_for 10 node_is $dev/synchmess 444 &&
   out=$(as_user timeout 30 "$dir/synchmess-package-probe" $dev 3 2>&1); then
  pass restart_brings_devices_back
else fail restart_brings_devices_back "${out:-service or master device missing after restart}"; service_diag; fi

# The FUSE transport under the same unit (its sandbox must allow the mount,
# and the mount must be visible here), then back to the default.
mkdir -p /run/systemd/system/synchmess.service.d
printf '[Service]\nExecStart=\nExecStart=/usr/sbin/synchmessd --foreground --transport=fuse\n' \
  >/run/systemd/system/synchmess.service.d/fuse.conf
systemctl daemon-reload
out=
if timeout 60 systemctl restart synchmess.service && systemctl is-active --quiet synchmess.service &&
   [[ $(stat -f -c %T $dev) == fuseblk || $(stat -f -c %T $dev) == fuse ]] &&
   out=$(as_user timeout 30 "$dir/synchmess-package-probe" $dev 4 2>&1); then
  pass fuse_transport_under_unit
else fail fuse_transport_under_unit "${out:-service inactive or $dev is not a FUSE mount ($(stat -f -c %T $dev 2>&1))}"; service_diag; fi
rm -rf /run/systemd/system/synchmess.service.d
systemctl daemon-reload
timeout 60 systemctl restart synchmess.service || true
wait_for 10 node_is $dev/synchmess 444 || { echo "# back on CUSE: master missing"; service_diag; }

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

echo "# checks end at $(uptime) s"
echo SYNCHMESS-GUEST-DONE
