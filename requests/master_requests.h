// master_requests.h - the master device's operations, for both transports.
//
// Contract (docs/abi.md):
//  - open: read-only opens succeed; O_WRONLY and O_RDWR fail EPERM.
//  - read, write, fsync: EPERM.
//  - install(d): EBADF outside 1..max_groups; otherwise the group exists
//    (created if new) and its device exists before `finish` runs with the
//    path; the transport then writes the path back and replies.
//  - get_params / set_params: the extension ioctls; set is for root only
//    (EPERM), zero fields are kept, and values out of range fail EINVAL;
//    set_params then applies them to every group (Group::apply_limits:
//    published to the fast path, segments grown).
//  - get_stats / get_group_stats: the statistics (stats_requests.h); any
//    caller; uptime counts from this object's construction.
//  - any other ioctl: EPERM.
// Thread safety: every method may run on any request thread at once.
#pragma once

#include <chrono>
#include <functional>
#include <span>
#include <string>

#include "core/ioctl_codec.h"
#include "core/registry.h"
#include "core/size_limits.h"
#include "requests/reply.h"
#include "requests/transport.h"

namespace synchmess {

class MasterRequests {
 public:
  using Finish = std::move_only_function<void(Reply, std::string path)>;

  MasterRequests(Registry& registry, Limits& limits, Transport& transport)
      : registry_(registry), limits_(limits), transport_(transport) {}

  void open(Reply reply, fuse_file_info& fi);
  void install(Reply reply, unsigned descriptor, Finish finish);
  // Everything else an ioctl on the master can be; `in` holds spec.in_size bytes.
  void ioctl(Reply reply, IoctlSpec spec, std::span<const std::byte> in);

 private:
  Registry& registry_;
  Limits& limits_;
  Transport& transport_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

// Validates a new limit pair; Errc::invalid_argument when out of range
// (1..Limits::largest_max_message_size, 1..Limits::largest_max_storage_size).
Result<void> check_limits(std::size_t max_message_size, std::size_t max_storage_size);

}  // namespace synchmess
