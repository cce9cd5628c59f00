// group.h - one SynchMess group: its queue, storage, delay and barrier.
//
// Contract (docs/abi.md):
//  - The readable queue IS a ring (ring/shm_ring.h) in a shared-memory
//    segment (segment.h) that fast-path clients may map and use directly;
//    every operation here runs on the same ring, so FIFO and exactly-once
//    hold whichever path each side takes.
//  - send(bytes): EPERM-class errors when bytes exceed max_message_size or
//    the group's storage would exceed max_storage_size.  Storage counts
//    storage_charge() (length + overhead, size_limits.h) of readable and of
//    delayed messages, in the ring's shared counter: it is reserved when a
//    message is written, so a delayed message can never be dropped later for
//    lack of room.  An empty write succeeds with 0 and queues nothing (an
//    empty message would read as "queue empty").  With a delay set the
//    message becomes readable after the delay; send still returns at once.
//    Delayed messages wait in the DelayLine (daemon memory) and are written
//    into the ring when due; a ring that cannot take one now (a writer
//    between two steps, corruption) makes the line retry, never drop.
//  - receive(): the oldest readable message, whole (the caller copies what
//    fits; the rest of a message is never left behind), or nullptr.
//    Readable messages are FIFO in the sense of message_queue.h.
//  - Growth: when max_storage_size rises above what the segment holds, the
//    group makes a bigger segment (generation + 1) and retires the old one
//    (shm_ring_retire): readers drain the old ring, then read the new one;
//    while an old one drains, its readable messages count against the limit
//    with the new ring's counter, so EPERM falls at the same byte.
//  - set_send_delay / revoke_delayed / flush_delayed: delay_line.h.
//  - sleep / awake / cancel_sleep: barrier.h.
//  - After every publication by the daemon the listener (if any) is told,
//    outside locks (fast-path writers tell the daemon with FAST_KICK).
//  - stats(): the group's counters (group_counters.h); queued counts come
//    from the rings; sent/received add the fast-path clients' own counts
//    (Segment::fast_counts: clamped hints, forgeable by the group's
//    clients); opened()/closed() count the open files of its device.
//  - sweep(): the daemon's periodic repair (one thread): shm_ring_sweep on
//    each ring, re-format of a corrupt one (its messages are lost; delayed
//    messages are kept and their charges re-applied), growth, limits; it
//    re-publishes the limits, the delay and the pollers flag (a client may
//    have changed them).
//  - A device send or receive that finds the ring busy (a writer or reader
//    between two steps, or a stuck record) retries for at most ~20 ms, then
//    gives up (send: Errc::out_of_memory; receive: nothing); try_send
//    gives up at once (the caller parks the write and tries again later).
// Thread safety: every member may be called from any thread, sweep() from
// one thread at a time; send and receive of immediate messages take no
// lock, and neither does stats().  Delayed sends, growth and repair take the
// group's growth mutex (never held by the read/write path).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "core/barrier.h"
#include "core/delay_line.h"
#include "core/errc.h"
#include "core/group_counters.h"
#include "core/message.h"
#include "core/segment.h"
#include "core/size_limits.h"

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
  std::size_t reserve_nodes = 16;  // unused since the queue is a ring (kept for callers)
  GroupListener* listener = nullptr;
};

// What sweep() found and did.
struct SweepReport {
  unsigned repaired = 0;         // records the ring sweep repaired
  bool reformatted = false;      // the current ring was corrupt and re-formatted
  bool abandoned = false;        // a retired ring was corrupt and given up
  std::uint64_t generation = 0;  // of the current segment
};

// The current segment, for the fast path's hand-out.
struct FastSegment {
  int fd;  // owned by the group
  std::uint64_t bytes;
  std::uint64_t generation;
};

class Group final : private DelaySink {
 public:
  // The smallest segment: shm_ring_segment_bytes(max(max_storage, this)).
  static constexpr std::uint64_t min_segment_holds = std::uint64_t{1} << 20;
  // Throws std::system_error (ENOMEM) when the segment cannot be made.
  Group(boost::asio::any_io_executor executor, const Limits& limits, GroupOptions options);
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  unsigned descriptor() const noexcept { return descriptor_; }

  Result<std::size_t> send(std::span<const std::byte> bytes);
  // send() that does not wait for a busy ring: Errc::out_of_memory at once
  // if the ring's newest reservation lacks its word0, else one try (the
  // service loop's retry of a parked device write, GroupRequests).
  Result<std::size_t> try_send(std::span<const std::byte> bytes);
  MessagePtr receive() noexcept;
  // receive() copied into out: the copied length (0 when empty).
  std::size_t receive_into(std::span<std::byte> out) noexcept;
  // The oldest message handed to fn(std::span<const std::byte>) without a
  // copy (the bytes are in the shared segment: a hostile client may change
  // them meanwhile, never their bounds).  false when empty.
  template <class F>
  bool receive_with(F&& fn) noexcept {
    auto call = [](const unsigned char* p, std::size_t n, void* ctx) {
      (*static_cast<F*>(ctx))(std::span<const std::byte>(reinterpret_cast<const std::byte*>(p), n));
    };
    return receive_raw(call, &fn);
  }
  bool readable() const noexcept;

  Result<void> set_send_delay(unsigned ms);
  unsigned send_delay() const noexcept { return delays_.delay_ms(); }
  std::size_t revoke_delayed();
  std::size_t flush_delayed();
  std::size_t delayed() const { return delays_.pending(); }

  Barrier::Ticket sleep(Barrier::Handler h) { return barrier_.sleep(std::move(h)); }
  unsigned awake() { return barrier_.awake(); }
  bool cancel_sleep(Barrier::Ticket t, Errc why) { return barrier_.cancel(t, why); }

  // Storage charged for readable plus delayed messages (storage_charge of
  // each message's length), on both paths.
  std::size_t stored_bytes() const noexcept;

  GroupStats stats() const noexcept;
  void opened() noexcept { counters_.opened(); }
  void closed() noexcept { counters_.closed(); }

  // --- fast path (daemon side) ---
  // The current segment for a client; Errc::try_again while an older
  // segment still drains (a client must not read the new ring first).
  // Marks the group as shared (sweep() then matters).
  Result<FastSegment> fast_segment();
  bool fast_shared() const noexcept { return shared_.load(std::memory_order_relaxed); }
  // The device has poll waiters: sets the rings' pollers flag (seq_cst);
  // the caller re-checks readable() after setting it.
  void set_pollers(bool waiting) noexcept;
  // Publishes the current limits into the ring and grows it if
  // max_storage_size rose above what it holds (after IOCTL_SET_PARAMS).
  void apply_limits();
  // The periodic repair; alive(pid, ctx) as shm_ring_sweep.  stall_ms: the
  // ring's stall bound.
  SweepReport sweep(std::uint64_t now_ms, std::uint64_t stall_ms, int (*alive)(std::uint32_t, void*),
                    void* ctx);
  // A daemon operation met a corrupt or falsely retired ring: sweep() soon.
  bool needs_repair() const noexcept { return needs_repair_.load(std::memory_order_relaxed); }
  std::uint64_t generation() const noexcept { return current_.load(std::memory_order_acquire)->generation(); }
  std::uint64_t segment_bytes() const noexcept;  // all segments the group maps now

  // Cancels sleepers (EINTR) and timers, destroys delayed messages.
  void shutdown();

 private:
  MessagePtr publish(MessagePtr m) noexcept override;
  void published() noexcept override;
  void discarded(std::size_t bytes) noexcept override;
  bool receive_raw(shm_ring_consumer fn, void* ctx) noexcept;
  Result<std::size_t> send_immediate(std::span<const std::byte> bytes, bool patient = true);
  Result<std::size_t> send(std::span<const std::byte> bytes, bool patient);
  // Readable charge of the retired segments before `until` (their counters
  // minus the delayed charge they held when retired).
  std::uint64_t old_readable(const Segment* until) const noexcept;
  void advance_oldest(Segment* s) noexcept;
  bool grow();                        // needs growth_mu_
  void repair_current();              // needs growth_mu_
  // On the write path: one comparison unless the limit rose; a growth that
  // could not retire the old ring is retried by sweep(), not by every write.
  void maybe_grow() {
    if (limits_.max_storage_size.load(std::memory_order_relaxed) > current_.load(std::memory_order_acquire)->holds() &&
        !grow_blocked_.load(std::memory_order_relaxed))
      apply_limits();
  }

  const unsigned descriptor_;
  const Limits& limits_;
  GroupListener* const listener_;
  GroupCounters counters_;
  // Segments: oldest_ (readers start there) -> next -> ... -> current_
  // (writers).  All live until the group dies (segments_ owns them).
  std::mutex growth_mu_;
  std::vector<std::unique_ptr<Segment>> segments_;  // growth_mu_
  std::atomic<Segment*> current_{nullptr};
  std::atomic<Segment*> oldest_{nullptr};
  Segment* first_ = nullptr;  // the first segment (set once): stats() walks all
  std::atomic<bool> growing_{false};
  std::atomic<bool> shared_{false};
  std::atomic<bool> pollers_{false};
  // Orders set_pollers() against the sweep re-publishing the flag (a stale
  // republication could clear it under a new poller).  Daemon threads only.
  std::mutex pollers_mu_;
  std::atomic<bool> needs_repair_{false};
  std::atomic<bool> grow_blocked_{false};
  // Charge of the messages in the delay line (changed under the line's
  // lock, or under growth_mu_ for a delayed send).
  std::atomic<std::uint64_t> delayed_charge_{0};
  DelayLine delays_;
  Barrier barrier_;
};

}  // namespace synchmess
