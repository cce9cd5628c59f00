// segment.h - one shared-memory segment of a group: a sealed memfd holding
// a ring (ring/shm_ring.h), mapped by the daemon.
//
// Contract:
//  - create(): a memfd (MFD_CLOEXEC | MFD_ALLOW_SEALING) of
//    shm_ring_segment_bytes(holds) bytes, sealed F_SEAL_SHRINK |
//    F_SEAL_GROW | F_SEAL_SEAL, mapped shared, formatted as an empty ring
//    with the given limits and generation.  `holds`: the storage limit the
//    segment was sized for (the ring has room for it plus in-flight
//    records).  Fails with Errc::out_of_memory (no memory, no descriptors).
//  - The mapping is MAP_NORESERVE: pages are allocated as the ring turns,
//    so a segment costs at most bytes() of memory, and little while unused.
//  - fd(): the memfd (owned), handed to fast-path clients as is; the seals
//    keep a client from resizing it under the daemon.
//  - release_data(): gives the data pages back (a drained, retired segment
//    whose records are all freed); the header stays.
//  - fast_counts(): the writes and reads fast-path clients say they did on
//    this segment (shm_ring_fast_counts: hints any client of the group can
//    forge), each clamped to fast_count_limit, plus what the segment's
//    earlier formats held (reformat() keeps them), so they never wrap a
//    total; used for statistics only.
// Thread safety: immutable after create() except the ring's memory (any
// thread or process, as shm_ring.h) and the atomic flags.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "core/errc.h"
#include "ring/shm_ring.h"

namespace synchmess {

class Segment {
 public:
  static Result<std::unique_ptr<Segment>> create(unsigned descriptor, std::uint64_t holds,
                                                 std::uint64_t generation, std::uint64_t max_message,
                                                 std::uint64_t max_storage);
  ~Segment();
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;

  const shm_ring* ring() const noexcept { return &ring_; }
  int fd() const noexcept { return fd_; }
  std::uint64_t bytes() const noexcept { return bytes_; }
  std::uint64_t holds() const noexcept { return holds_; }
  std::uint64_t generation() const noexcept { return generation_; }
  // Re-lays out an empty ring in place (a corrupt segment); the caller
  // re-applies what the counter must hold.
  void reformat(std::uint64_t max_message, std::uint64_t max_storage) noexcept;
  void release_data() noexcept;
  static constexpr std::uint64_t fast_count_limit = std::uint64_t{1} << 40;
  void fast_counts(std::uint64_t& sent, std::uint64_t& received) const noexcept;

  // Set once the segment is retired: the delayed messages' charge its
  // counter held then (they moved to the successor's counter).
  std::atomic<std::uint64_t> retired_delayed{0};
  // The next segment (set, with release, when this one is retired).
  std::atomic<Segment*> next{nullptr};
  // Corrupt while retired: its messages are given up, readers skip it.
  std::atomic<bool> abandoned{false};
  // The data pages were released (release_data ran).
  bool released = false;
  // The daemon's sweep state for this ring (the sweep's thread only).
  shm_ring_sweep_state sweep{};

 private:
  Segment() = default;
  int fd_ = -1;
  void* mem_ = nullptr;
  std::uint64_t bytes_ = 0, holds_ = 0, generation_ = 0;
  shm_ring ring_{};
  // The clamped counts of the formats before the current one (reformat).
  std::atomic<std::uint64_t> fast_sent_base_{0}, fast_received_base_{0};
};

}  // namespace synchmess
