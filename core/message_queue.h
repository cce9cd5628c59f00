// message_queue.h - the lock-free MPMC FIFO of one group's readable messages.
//
// Contract:
//  1. FIFO, precisely: the queue is linearizable.  Every push and pop takes
//     effect at one instant between its call and its return; pops return
//     messages in the order their pushes took effect.  Two pushes that
//     overlap in time may take effect in either order; a push that returned
//     before another push began is popped first.
//  2. Exactly once: every pushed message is popped by exactly one pop, or
//     destroyed by the destructor.
//  3. Thread safety: push and pop may run from any number of threads at
//     once; they take no lock (Boost.Lockfree's Michael-Scott queue with a
//     node free-list).  size() is exact only when nothing runs concurrently.
//  4. Memory: nodes come from a free-list reserved up front; popped nodes
//     return to it.  A push allocates a node only when more messages are
//     queued at once than ever before (bounded by the storage limit, which
//     charges every message at least Limits::message_overhead bytes); nodes
//     are carved from slabs (node_pool.h) and kept until the queue dies.
#pragma once

#include <atomic>
#include <cstddef>

#include <boost/lockfree/queue.hpp>

#include "core/message.h"
#include "core/node_pool.h"

namespace synchmess {

class MessageQueue {
 public:
  explicit MessageQueue(std::size_t reserve_nodes);
  ~MessageQueue();
  MessageQueue(const MessageQueue&) = delete;
  MessageQueue& operator=(const MessageQueue&) = delete;

  // Enqueue m.  Returns m back (not enqueued) only if memory is exhausted.
  MessagePtr push(MessagePtr m) noexcept;
  // The oldest message, or nullptr if none.
  MessagePtr pop() noexcept;

  // Messages pushed and not yet popped (a hint under concurrency).
  std::size_t size() const noexcept {
    auto n = count_.load(std::memory_order_seq_cst);  // pairs with GroupRequests::poll
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }
  bool empty() const noexcept { return size() == 0; }

 private:
  boost::lockfree::queue<Message*, boost::lockfree::allocator<NodeAllocator<void>>> queue_;
  // Incremented after a push took effect, decremented after a pop took
  // effect; it lags the queue and may dip below zero for an instant.
  std::atomic<std::ptrdiff_t> count_{0};
};

}  // namespace synchmess
