// fuse_transport.h - the SynchMess ABI as a FUSE filesystem, for kernels
// without CUSE.
//
// Contract: mounts at dev_dir (created if missing; a stale mount left by a
// killed daemon is lazily unmounted first; a live one is an error) with
// allow_other and default_permissions.  The root lists `synchmess` (the
// master, 0444) and `synchmessN` for every installed group (0666).  Files
// are opened with direct_io and nonseekable, so one read returns one
// message and offsets are ignored.  No file can be created, removed or
// renamed (EPERM).  fsync on a group publishes its delayed messages.
// IOCTL_INSTALL_GROUP moves only 8 bytes through FUSE: the path is written
// into the caller's group_t with process_vm_writev (remote_write.h); when
// that is refused the ioctl fails (EPERM or EFAULT) and a line is logged.
// Thread safety: requests are served by ctx.request_threads threads that
// each read /dev/fuse and answer what they read (SessionReaders); the
// install's remote write completes on the service's loop (ctx.io).
#pragma once

#include <memory>

#include "requests/transport.h"
#include "requests/transport_context.h"

namespace synchmess {

std::unique_ptr<Transport> make_fuse_transport(TransportContext ctx);

}  // namespace synchmess
