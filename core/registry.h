// registry.h - the installed groups, by descriptor.
//
// Contract:
//  - install(d) creates group d if it does not exist and returns it either
//    way (idempotent); Errc::bad_descriptor unless 1 <= d <= max_groups;
//    Errc::shutting_down after shutdown().
//  - find(d) returns the installed group d or nullptr; it takes no lock.
//  - installed() counts the groups installed; find_from(d) returns the
//    installed group with the lowest descriptor >= d, or nullptr (a scan
//    of at most max_groups slots); neither takes a lock.
//  - install fails with Errc::out_of_memory when the group's shared-memory
//    segment cannot be made (segment.h).
//  - A group, once installed, lives until the registry is destroyed.
//  - shutdown() shuts every group down (sleepers get Errc::interrupted,
//    delayed messages are destroyed, timers stop).
// Thread safety: every member may be called from any thread.  Destroy the
// registry only after shutdown() and after the executor stopped running.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "core/errc.h"
#include "core/group.h"
#include "core/size_limits.h"
#include "synchmess_interface.h"

namespace synchmess {

struct RegistryOptions {
  static constexpr unsigned default_max_groups = MAX_NUM_GROUPS;  // the module's
  static constexpr unsigned largest_max_groups = (1u << 20) - 1;  // char minors

  unsigned max_groups = default_max_groups;  // 1..largest_max_groups
  std::size_t reserve_nodes = 16;           // per group queue, see message_queue.h
  GroupListener* listener = nullptr;
};

class Registry {
 public:
  struct Installed {
    Group* group;
    bool created;  // false when it already existed
  };

  // options.max_groups is clamped into 1..largest_max_groups.
  Registry(boost::asio::any_io_executor executor, const Limits& limits, RegistryOptions options);
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Result<Installed> install(unsigned descriptor);
  Group* find(unsigned descriptor) const noexcept;
  Group* find_from(unsigned descriptor) const noexcept;
  unsigned installed() const noexcept { return installed_.load(std::memory_order_relaxed); }
  // Whether install(descriptor) would accept the number (1..max_groups).
  bool accepts(unsigned descriptor) const noexcept { return descriptor >= 1 && descriptor <= max_groups_; }
  unsigned max_groups() const noexcept { return max_groups_; }
  // Storage charged in all groups now (a sum of hints; no lock).
  std::size_t stored_bytes() const noexcept;
  void shutdown();

 private:
  boost::asio::any_io_executor executor_;
  const Limits& limits_;
  const RegistryOptions options_;
  const unsigned max_groups_;
  // slots_[d - 1]: published with release once the group is built.
  std::unique_ptr<std::atomic<Group*>[]> slots_;
  std::atomic<unsigned> installed_{0};
  std::mutex install_mu_;  // serialises creation only, never lookups
  std::vector<std::unique_ptr<Group>> owned_;
  bool stopped_ = false;
};

}  // namespace synchmess
