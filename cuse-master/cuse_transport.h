// cuse_transport.h - the SynchMess ABI as real character devices (CUSE).
//
// Contract: start() creates the master /dev/<dir>/synchmess with a dynamic
// major and minor 0 and returns once it exists; ensure_group(d) creates
// /dev/<dir>/synchmessd with the same major and minor d, once, and reports
// every waiter when it exists.  The master answers only read-only opens and
// IOCTL_INSTALL_GROUP (unrestricted ioctl: the full 260-byte group_t moves
// both ways) and the parameter ioctls.  One /dev/cuse open per device, all
// served by the service's request loops (ctx.loops: device d on loop
// d mod loops, the master on loop 0), so the thread that reads a device's
// request answers it.
// Thread safety: ensure_group from any thread.
#pragma once

#include <memory>
#include <string>

#include "requests/transport.h"
#include "requests/transport_context.h"

namespace synchmess {

std::unique_ptr<Transport> make_cuse_transport(TransportContext ctx);

// True when the kernel has /dev/cuse (after trying `modprobe cuse` if it
// did not); `why` says what was found, for the log.
bool cuse_available(std::string& why);

}  // namespace synchmess
