// group_counters.h - what one group counts about itself, for the operator
// (IOCTL_GET_GROUP_STATS, synchmess_stats.h).
//
// Contract:
//  - Group calls the event methods; snapshot() reads every counter.
//  - Gauges (queued, delayed, open files) are raised before the event they
//    count becomes visible to another thread (the message published to the
//    queue or the delay line, the open answered) and lowered after the
//    opposite event took effect; the queue and the delay line order the two
//    (release/acquire), so no gauge ever goes below zero.
//  - snapshot() is exact when nothing runs concurrently; otherwise each
//    field was true at some instant during the call, and fields may come
//    from different instants.
// Thread safety: every member may be called from any thread at once.  All
// counters are relaxed atomics: nothing here takes a lock or orders other
// memory, so counting adds no lock to the send/receive path.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace synchmess {

struct GroupStats {
  std::uint64_t queued_messages = 0;  // filled by Group (its queue's count)
  std::uint64_t queued_bytes = 0;
  std::uint64_t delayed_messages = 0;
  std::uint64_t delayed_bytes = 0;
  std::uint64_t stored_bytes = 0;  // filled by Group (storage charged)
  unsigned send_delay_ms = 0;      // filled by Group
  std::uint64_t sleepers = 0;      // filled by Group (its barrier)
  std::uint64_t open_files = 0;
  std::uint64_t sent = 0;      // totals, messages
  std::uint64_t received = 0;
  std::uint64_t revoked = 0;
  std::uint64_t flushed = 0;
};

class GroupCounters {
 public:
  // A write of `bytes` will be queued now: call before the push.
  void queueing(std::size_t bytes) noexcept { add(queued_bytes_, bytes); }
  // The push did not happen (out of memory): undoes queueing().
  void not_queued(std::size_t bytes) noexcept { sub(queued_bytes_, bytes); }
  // A write of `bytes` will wait for the send delay: call before the defer.
  void delaying(std::size_t bytes) noexcept {
    add(delayed_messages_, 1);
    add(delayed_bytes_, bytes);
  }
  // The defer did not keep it (the delay became 0): undoes delaying().
  void not_delayed(std::size_t bytes) noexcept {
    sub(delayed_messages_, 1);
    sub(delayed_bytes_, bytes);
  }
  // A delayed message left the delay line (published, revoked, discarded);
  // for a publication call queueing() first.
  void undelayed(std::size_t bytes) noexcept { not_delayed(bytes); }
  void sent() noexcept { add(sent_, 1); }
  void unsent() noexcept { sub(sent_, 1); }  // a write counted by sent() failed after all
  void received(std::size_t bytes) noexcept {
    sub(queued_bytes_, bytes);
    add(received_, 1);
  }
  void revoked(std::size_t n) noexcept { add(revoked_, n); }
  void flushed(std::size_t n) noexcept { add(flushed_, n); }
  void opened() noexcept { add(open_files_, 1); }
  void closed() noexcept { sub(open_files_, 1); }

  GroupStats snapshot() const noexcept {
    GroupStats s;
    s.queued_bytes = get(queued_bytes_);
    s.delayed_messages = get(delayed_messages_);
    s.delayed_bytes = get(delayed_bytes_);
    s.open_files = get(open_files_);
    s.sent = get(sent_);
    s.received = get(received_);
    s.revoked = get(revoked_);
    s.flushed = get(flushed_);
    return s;
  }

 private:
  using Counter = std::atomic<std::uint64_t>;
  static void add(Counter& c, std::uint64_t n) noexcept { c.fetch_add(n, std::memory_order_relaxed); }
  static void sub(Counter& c, std::uint64_t n) noexcept { c.fetch_sub(n, std::memory_order_relaxed); }
  static std::uint64_t get(const Counter& c) noexcept { return c.load(std::memory_order_relaxed); }

  Counter queued_bytes_{0};
  Counter delayed_messages_{0};
  Counter delayed_bytes_{0};
  Counter open_files_{0};
  Counter sent_{0};
  Counter received_{0};
  Counter revoked_{0};
  Counter flushed_{0};
};

}  // namespace synchmess
