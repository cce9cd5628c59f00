// stats_requests.h - the statistics ioctls of the master device
// (IOCTL_GET_STATS, IOCTL_GET_GROUP_STATS; interface/synchmess_stats.h).
//
// Contract (docs/abi.md "Statistics"):
//  - daemon_stats(): the daemon-wide struct, version SYNCHMESS_STATS_VERSION,
//    reserved fields 0; transport "cuse"/"fuse" map to
//    SYNCHMESS_TRANSPORT_CUSE/FUSE (anything else to 0).
//  - group_stats(in): `in` holds the caller's struct (sizeof bytes, else
//    Errc::bad_address).  flags other than SYNCHMESS_GROUP_STATS_NEXT:
//    Errc::invalid_argument.  Without NEXT: Errc::bad_descriptor outside
//    1..max_groups, Errc::no_such_group when not installed.  With NEXT: the
//    installed group with the lowest descriptor >= descriptor (0 counts as
//    1), Errc::no_such_group when there is none.  The answer echoes flags.
// Thread safety: both may run on any thread at once; they read relaxed
// counters and the registry's slots and take no lock.
#pragma once

#include <chrono>
#include <span>
#include <string_view>

#include "core/errc.h"
#include "core/registry.h"
#include "core/size_limits.h"
#include "synchmess_stats.h"

namespace synchmess {

synchmess_stats daemon_stats(const Registry& registry, const Limits& limits, std::string_view transport,
                             std::chrono::milliseconds uptime) noexcept;

Result<synchmess_group_stats> group_stats(const Registry& registry, std::span<const std::byte> in) noexcept;

}  // namespace synchmess
