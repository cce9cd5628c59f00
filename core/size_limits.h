// size_limits.h - the run-time parameters shared by every group.
//
// Contract: the module's MAX_MESSAGE_SIZE and MAX_STORAGE_SIZE (per group),
// their defaults and their ranges: the one home of these numbers (daemon
// options, IOCTL_SET_PARAMS and docs/abi.md "Parameters" use them).
// A stored message of n bytes is charged n + message_overhead against the
// storage limit (see storage_charge), which bounds the number of messages a
// group can hold and so the daemon's memory per group.
// Thread safety: any thread may read or change them at any time; a change
// applies to writes that start after it.  Shrinking a limit never drops a
// stored message: it only refuses new ones.
#pragma once

#include <atomic>
#include <cstddef>

#include "synchmess_interface.h"

namespace synchmess {

struct Limits {
  static constexpr std::size_t default_max_message_size = 1024;
  static constexpr std::size_t default_max_storage_size = std::size_t{1} << 20;  // 1 MiB
  // The ranges are 1..largest.  The kernel splits direct I/O larger than its
  // per-request page limit (32 pages) into several requests, which would
  // split a message: 65536 stays below that limit for any buffer alignment.
  static constexpr std::size_t largest_max_message_size = 65536;
  static constexpr std::size_t largest_max_storage_size = std::size_t{1} << 40;

  static constexpr std::size_t message_overhead = SYNCHMESS_MESSAGE_OVERHEAD;

  std::atomic<std::size_t> max_message_size{default_max_message_size};
  std::atomic<std::size_t> max_storage_size{default_max_storage_size};
};

// What a stored message of `bytes` bytes counts against max_storage_size.
constexpr std::size_t storage_charge(std::size_t bytes) noexcept { return bytes + Limits::message_overhead; }

}  // namespace synchmess
