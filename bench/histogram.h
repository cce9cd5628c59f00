// histogram.h - LogHistogram: a fixed-size, log-bucketed latency histogram.
//
// Contract: records non-negative durations in nanoseconds with a relative
// bucket error below 1/kSubBuckets (~3 %); min, max, count and sum are
// exact.  Percentiles return the upper edge of the bucket holding the
// requested rank (clamped to the exact max), so they never under-report.
//
// Thread safety: none; one histogram per thread, merged after the threads
// stopped.  The type is trivially copyable and has no pointers, so it can
// live in memory shared between processes (see shared_block.h).
#pragma once

#include <cstddef>
#include <cstdint>

namespace synchmess::bench {

class LogHistogram {
 public:
  static constexpr int kSubBits = 5;  // 32 sub-buckets per power of two
  static constexpr int kSubBuckets = 1 << kSubBits;
  static constexpr int kMaxExponent = 42;  // 2^42 ns ~ 73 minutes
  // Row 0 holds 0..kSubBuckets-1 exactly; row r >= 1 holds [2^(r+4), 2^(r+5)).
  static constexpr int kBuckets = (kMaxExponent - kSubBits + 2) * kSubBuckets;

  void clear();
  void record(std::uint64_t ns);
  void merge(const LogHistogram& other);

  std::uint64_t count() const { return count_; }
  std::uint64_t max() const { return max_; }
  std::uint64_t min() const { return count_ ? min_ : 0; }
  double mean() const { return count_ ? double(sum_) / double(count_) : 0.0; }
  // q in [0, 1]; 0 when empty.
  std::uint64_t percentile(double q) const;

 private:
  static int bucket_of(std::uint64_t ns);
  static std::uint64_t upper_edge(int bucket);

  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;
  std::uint64_t min_ = 0;
  std::uint64_t max_ = 0;
  std::uint64_t buckets_[kBuckets] = {};
};

}  // namespace synchmess::bench
