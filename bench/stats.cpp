// stats.cpp - LogHistogram and SeenSet (see bench.h).
#include <algorithm>
#include <bit>
#include <cmath>

#include "bench.h"

namespace synchmess::bench {
namespace {

// Row 0 holds 0..kSub-1 exactly; a value with highest bit e >= kSubBits goes
// to row e-kSubBits+1, the kSubBits bits below the leading one pick the column.
int bucket_of(std::uint64_t ns) {
  using H = LogHistogram;
  if (ns < H::kSub) return int(ns);
  int e = std::bit_width(ns) - 1;
  if (e > H::kMaxExp) return H::kBuckets - 1;
  return (e - H::kSubBits + 1) * H::kSub + int(ns >> (e - H::kSubBits)) - H::kSub;
}

std::uint64_t upper_edge(int bucket) {
  int row = bucket / LogHistogram::kSub, column = bucket % LogHistogram::kSub;
  return row == 0 ? std::uint64_t(column) : (std::uint64_t(LogHistogram::kSub + column + 1) << (row - 1)) - 1;
}

constexpr std::uint64_t kWordsPerChunk = SeenSet::kChunkBits / 64;

}  // namespace

void LogHistogram::record(std::uint64_t ns) {
  if (count_ == 0 || ns < min_) min_ = ns;
  max_ = std::max(max_, ns);
  ++count_;
  sum_ += ns;
  ++buckets_[bucket_of(ns)];
}

void LogHistogram::merge(const LogHistogram& o) {
  if (o.count_ == 0) return;
  if (count_ == 0 || o.min_ < min_) min_ = o.min_;
  max_ = std::max(max_, o.max_);
  count_ += o.count_;
  sum_ += o.sum_;
  for (int i = 0; i < kBuckets; ++i) buckets_[i] += o.buckets_[i];
}

std::uint64_t LogHistogram::percentile(double q) const {
  if (count_ == 0) return 0;
  auto rank = std::max<std::uint64_t>(1, std::uint64_t(std::ceil(std::clamp(q, 0.0, 1.0) * double(count_))));
  std::uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i)
    if ((seen += buckets_[i]) >= rank)  // the last bucket is open-ended
      return i == kBuckets - 1 ? max_ : std::min(upper_edge(i), max_);
  return max_;
}

SeenSet::SeenSet(unsigned producers)
    : producers_(producers), chunks_(new std::atomic<Word*>[producers * kMaxChunks]()) {}

SeenSet::~SeenSet() {
  for (std::size_t i = 0; i < producers_ * kMaxChunks; ++i) delete[] chunks_[i].load();
}

bool SeenSet::mark(std::uint32_t producer, std::uint64_t seq) {
  if (producer >= producers_ || seq >= kChunkBits * kMaxChunks) {
    out_of_range_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  auto& slot = chunks_[producer * kMaxChunks + seq / kChunkBits];
  Word* c = slot.load(std::memory_order_acquire);
  if (c == nullptr) {
    Word* fresh = new Word[kWordsPerChunk]();
    if (slot.compare_exchange_strong(c, fresh, std::memory_order_acq_rel)) c = fresh;
    else delete[] fresh;  // c is the winner's chunk
  }
  std::uint64_t bit = seq % kChunkBits, mask = 1ULL << (bit % 64);
  return (c[bit / 64].fetch_or(mask, std::memory_order_relaxed) & mask) == 0;
}

DeliveryCheck SeenSet::check(const std::vector<std::uint64_t>& written) const {
  DeliveryCheck r;
  r.unexpected = out_of_range_.load();
  for (unsigned p = 0; p < producers_; ++p) {
    std::uint64_t n = p < written.size() ? written[p] : 0;
    r.expected += n;
    for (std::uint64_t ci = 0; ci < kMaxChunks; ++ci) {
      Word* c = chunks_[p * kMaxChunks + ci].load(std::memory_order_acquire);
      for (std::uint64_t seq = ci * kChunkBits, end = seq + kChunkBits; seq < end; ++seq) {
        bool set = c && (c[(seq % kChunkBits) / 64].load(std::memory_order_relaxed) >> (seq % 64)) & 1;
        if (seq < n) ++(set ? r.delivered : r.missing);
        else if (set) ++r.unexpected;
        if (!c && seq >= n) break;  // nothing further in an absent chunk
      }
    }
  }
  return r;
}

}  // namespace synchmess::bench
