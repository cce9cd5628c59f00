// group.h - one SynchMess group: its queue, storage, delay and barrier.
//
// Contract (docs/abi.md):
//  - send(bytes): EPERM-class errors when bytes exceed max_message_size or
//    the group's storage would exceed max_storage_size.  Storage counts
//    storage_charge() (length + overhead, size_limits.h) of readable and of
//    delayed messages: it is reserved when a
//    message is written, so a delayed message can never be dropped later for
//    lack of room.  An empty write succeeds with 0 and queues nothing (an
//    empty message would read as "queue empty").  With a delay set the
//    message becomes readable after the delay; send still returns at once.
//  - receive(): the oldest readable message, whole (the caller copies what
//    fits; the rest of a message is never left behind), or nullptr.
//    Readable messages are FIFO in the sense of message_queue.h.
//  - set_send_delay / revoke_delayed / flush_delayed: delay_line.h.
//  - sleep / awake / cancel_sleep: barrier.h.
//  - After every publication the listener (if any) is told, outside locks.
//  - stats(): the group's counters (group_counters.h); opened()/closed()
//    count the open files of its device, told by the request layer.
// Thread safety: every member may be called from any thread; send and
// receive of immediate messages take no lock, and neither does stats().
#pragma once

#include <atomic>
#include <cstddef>
#include <span>

#include <boost/asio/any_io_executor.hpp>

#include "core/barrier.h"
#include "core/delay_line.h"
#include "core/errc.h"
#include "core/group_counters.h"
#include "core/size_limits.h"
#include "core/message.h"
#include "core/message_queue.h"

namespace synchmess {

class Group;

// Told when messages become readable in a group.  Called on the thread
// that published them, often on the hot path: return quickly.
class GroupListener {
 public:
  virtual void on_readable(Group& g) noexcept = 0;

 protected:
  ~GroupListener() = default;
};

struct GroupOptions {
  unsigned descriptor = 0;
  std::size_t reserve_nodes = 16;  // queue nodes allocated up front
  GroupListener* listener = nullptr;
};

class Group final : private DelaySink {
 public:
  Group(boost::asio::any_io_executor executor, const Limits& limits, GroupOptions options);
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  unsigned descriptor() const noexcept { return descriptor_; }

  Result<std::size_t> send(std::span<const std::byte> bytes);
  MessagePtr receive() noexcept;
  // receive() copied into out: the copied length (0 when empty).
  std::size_t receive_into(std::span<std::byte> out) noexcept;
  bool readable() const noexcept { return !queue_.empty(); }

  Result<void> set_send_delay(unsigned ms) { return delays_.set_delay(ms); }
  unsigned send_delay() const noexcept { return delays_.delay_ms(); }
  std::size_t revoke_delayed();
  std::size_t flush_delayed();
  std::size_t delayed() const { return delays_.pending(); }

  Barrier::Ticket sleep(Barrier::Handler h) { return barrier_.sleep(std::move(h)); }
  unsigned awake() { return barrier_.awake(); }
  bool cancel_sleep(Barrier::Ticket t, Errc why) { return barrier_.cancel(t, why); }

  // Storage charged for readable plus delayed messages (storage_charge of
  // each message's length).
  std::size_t stored_bytes() const noexcept { return stored_.load(std::memory_order_acquire); }

  GroupStats stats() const noexcept;
  void opened() noexcept { counters_.opened(); }
  void closed() noexcept { counters_.closed(); }

  // Cancels sleepers (EINTR) and timers, destroys delayed messages.
  void shutdown();

 private:
  MessagePtr publish(MessagePtr m) noexcept override;
  void published() noexcept override;
  void discarded(std::size_t bytes) noexcept override;
  bool reserve(std::size_t bytes) noexcept;
  void release(std::size_t bytes) noexcept;

  const unsigned descriptor_;
  const Limits& limits_;
  GroupListener* const listener_;
  std::atomic<std::size_t> stored_{0};
  GroupCounters counters_;
  MessageQueue queue_;
  DelayLine delays_;
  Barrier barrier_;
};

}  // namespace synchmess
