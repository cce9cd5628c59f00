// barrier.h - the sleep/awake barrier of one group, without threads.
//
// Contract:
//  - sleep(h) registers the completion h and returns a ticket; no thread
//    waits.  h runs exactly once: with success when awake() takes it, or
//    with an error when cancel() or shutdown() takes it.
//  - awake() completes every sleeper registered before it and returns how
//    many it completed; a cancelled sleeper is gone and never counted.
//  - cancel(ticket, why) completes that sleeper with why, if it is still
//    registered, and says whether it did.
//  - After shutdown(), every sleeper is completed with Errc::interrupted and
//    sleep() completes new ones at once with Errc::shutting_down.
// Thread safety: all members may be called from any thread.  Completions
// run on the calling thread, after the internal lock is released, so they
// may reply to clients or call back into the barrier.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include "core/errc.h"

namespace synchmess {

class Barrier {
 public:
  using Handler = std::move_only_function<void(Result<void>)>;
  using Ticket = std::uint64_t;  // 0 is never a registered ticket

  Ticket sleep(Handler h);
  unsigned awake();
  bool cancel(Ticket t, Errc why);
  void shutdown();

  // Sleepers registered now (a hint under concurrency); takes no lock.
  std::size_t sleepers() const noexcept { return count_.load(std::memory_order_relaxed); }

 private:
  struct Sleeper {
    Ticket ticket;
    Handler handler;
  };
  mutable std::mutex mu_;
  std::vector<Sleeper> sleepers_;  // in sleep() order
  std::atomic<std::size_t> count_{0};  // sleepers_.size(), stored under mu_
  Ticket next_ticket_ = 1;
  bool stopped_ = false;
};

}  // namespace synchmess
