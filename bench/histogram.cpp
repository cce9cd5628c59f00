// histogram.cpp - see histogram.h.
//
// Bucketing: values below kSubBuckets get one bucket each (exact).  A value
// v >= kSubBuckets with highest set bit e lands in row e - kSubBits + 1;
// the kSubBits bits below the leading one pick the column, so every row
// spans one power of two split into kSubBuckets equal parts.  Values at or
// above 2^(kMaxExponent+1) share the last bucket (max stays exact).
#include "histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace synchmess::bench {

void LogHistogram::clear() { *this = LogHistogram{}; }

int LogHistogram::bucket_of(std::uint64_t ns) {
  if (ns < kSubBuckets) return int(ns);
  int e = std::bit_width(ns) - 1;  // ns in [2^e, 2^(e+1))
  if (e > kMaxExponent) return kBuckets - 1;
  int shift = e - kSubBits;
  int column = int(ns >> shift) - kSubBuckets;  // 0 .. kSubBuckets-1
  int row = e - kSubBits + 1;
  return row * kSubBuckets + column;
}

std::uint64_t LogHistogram::upper_edge(int bucket) {
  int row = bucket / kSubBuckets;
  int column = bucket % kSubBuckets;
  if (row == 0) return std::uint64_t(column);
  int shift = row - 1;
  return ((std::uint64_t(kSubBuckets + column + 1)) << shift) - 1;
}

void LogHistogram::record(std::uint64_t ns) {
  if (count_ == 0 || ns < min_) min_ = ns;
  if (ns > max_) max_ = ns;
  ++count_;
  sum_ += ns;
  ++buckets_[bucket_of(ns)];
}

void LogHistogram::merge(const LogHistogram& other) {
  if (other.count_ == 0) return;
  if (count_ == 0 || other.min_ < min_) min_ = other.min_;
  max_ = std::max(max_, other.max_);
  count_ += other.count_;
  sum_ += other.sum_;
  for (int i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
}

std::uint64_t LogHistogram::percentile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  auto rank = std::uint64_t(std::ceil(q * double(count_)));
  if (rank == 0) rank = 1;
  std::uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= rank)  // the last bucket is open-ended: report the max
      return i == kBuckets - 1 ? max_ : std::min(upper_edge(i), max_);
  }
  return max_;
}

}  // namespace synchmess::bench
