// size_limits.h - the run-time parameters shared by every group.
//
// Contract: the module's MAX_MESSAGE_SIZE and MAX_STORAGE_SIZE (per group).
// Thread safety: any thread may read or change them at any time; a change
// applies to writes that start after it.  Shrinking a limit never drops a
// stored message: it only refuses new ones.
#pragma once

#include <atomic>
#include <cstddef>

namespace synchmess {

struct Limits {
  static constexpr std::size_t default_max_message_size = 1024;
  static constexpr std::size_t default_max_storage_size = 1048576;

  std::atomic<std::size_t> max_message_size{default_max_message_size};
  std::atomic<std::size_t> max_storage_size{default_max_storage_size};
};

}  // namespace synchmess
