// seen_set.h - SeenSet: which (producer, sequence) messages were delivered.
//
// Contract: mark(p, s) returns true the first time (p, s) is marked and
// false on every later mark (a duplicate delivery).  Memory is one bit per
// sequence number, in chunks of kChunkBits allocated on first use, so the
// cost follows the number of messages actually written.  check() compares
// against the count each producer wrote (sequences 0..written-1).
//
// Thread safety: mark() is lock-free and may run concurrently from any
// number of threads.  Invariants: a chunk pointer goes from null to a
// zeroed chunk exactly once (compare-exchange; the loser frees its copy);
// bits are only ever set (fetch_or).  check() must not race with mark().
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace synchmess::bench {

struct DeliveryCheck {
  std::uint64_t expected = 0;    // sum of written counts
  std::uint64_t delivered = 0;   // distinct valid messages seen
  std::uint64_t missing = 0;     // written but never seen
  std::uint64_t unexpected = 0;  // seen with a sequence >= written
};

class SeenSet {
 public:
  static constexpr std::uint64_t kChunkBits = std::uint64_t(1) << 20;
  static constexpr std::uint64_t kMaxChunks = 4096;  // 2^32 per producer

  explicit SeenSet(unsigned producers);
  ~SeenSet();
  SeenSet(const SeenSet&) = delete;
  SeenSet& operator=(const SeenSet&) = delete;

  // False for a duplicate; also false (and counted) for an id out of range.
  bool mark(std::uint32_t producer, std::uint64_t seq);
  std::uint64_t out_of_range() const {
    return out_of_range_.load(std::memory_order_relaxed);
  }

  DeliveryCheck check(const std::vector<std::uint64_t>& written) const;

 private:
  using Word = std::atomic<std::uint64_t>;
  Word* chunk(std::uint32_t producer, std::uint64_t index);

  unsigned producers_;
  std::unique_ptr<std::atomic<Word*>[]> chunks_;  // producers_ * kMaxChunks
  std::atomic<std::uint64_t> out_of_range_{0};
};

}  // namespace synchmess::bench
