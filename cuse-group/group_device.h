// group_device.h - the CUSE operations of a group device.
//
// Contract: the table forwards every request of a group's char device to
// GroupRequests (daemon/group_requests.h) for the group whose descriptor
// is the device's minor.  ioctls run in CUSE's unrestricted mode: when a
// command needs argument bytes the kernel has not sent yet (SET_SEND_DELAY:
// 4 bytes, not the 8 its number claims), the request is retried with the
// real sizes.  The device's owner (CuseDevice::owner) is a CuseGroupHost.
#pragma once

#include "requests/fuse_api.h"  // FUSE_USE_VERSION
#include <fuse3/cuse_lowlevel.h>

#include "core/registry.h"
#include "requests/group_requests.h"

namespace synchmess {

struct CuseGroupHost {
  Registry& registry;
  GroupRequests& requests;
};

const cuse_lowlevel_ops& cuse_group_ops() noexcept;

}  // namespace synchmess
