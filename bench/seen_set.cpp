// seen_set.cpp - see seen_set.h.
#include "seen_set.h"

#include <algorithm>

namespace synchmess::bench {
namespace {
constexpr std::uint64_t kWordsPerChunk = SeenSet::kChunkBits / 64;
}

SeenSet::SeenSet(unsigned producers)
    : producers_(producers),
      chunks_(new std::atomic<Word*>[std::size_t(producers) * kMaxChunks]) {
  for (std::size_t i = 0; i < std::size_t(producers) * kMaxChunks; ++i)
    chunks_[i].store(nullptr, std::memory_order_relaxed);
}

SeenSet::~SeenSet() {
  for (std::size_t i = 0; i < std::size_t(producers_) * kMaxChunks; ++i)
    delete[] chunks_[i].load(std::memory_order_relaxed);
}

SeenSet::Word* SeenSet::chunk(std::uint32_t producer, std::uint64_t index) {
  auto& slot = chunks_[std::size_t(producer) * kMaxChunks + index];
  Word* c = slot.load(std::memory_order_acquire);
  if (c != nullptr) return c;
  Word* fresh = new Word[kWordsPerChunk];
  for (std::uint64_t i = 0; i < kWordsPerChunk; ++i)
    fresh[i].store(0, std::memory_order_relaxed);
  if (slot.compare_exchange_strong(c, fresh, std::memory_order_acq_rel))
    return fresh;
  delete[] fresh;
  return c;  // the winner's chunk
}

bool SeenSet::mark(std::uint32_t producer, std::uint64_t seq) {
  if (producer >= producers_ || seq >= kChunkBits * kMaxChunks) {
    out_of_range_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  Word* c = chunk(producer, seq / kChunkBits);
  std::uint64_t bit = seq % kChunkBits;
  std::uint64_t mask = std::uint64_t(1) << (bit % 64);
  return (c[bit / 64].fetch_or(mask, std::memory_order_relaxed) & mask) == 0;
}

DeliveryCheck SeenSet::check(const std::vector<std::uint64_t>& written) const {
  DeliveryCheck r;
  for (unsigned p = 0; p < producers_; ++p) {
    std::uint64_t n = p < written.size() ? written[p] : 0;
    r.expected += n;
    for (std::uint64_t ci = 0; ci < kMaxChunks; ++ci) {
      Word* c = chunks_[std::size_t(p) * kMaxChunks + ci].load(
          std::memory_order_acquire);
      std::uint64_t base = ci * kChunkBits;
      if (c == nullptr) {
        if (base < n) r.missing += std::min(n - base, kChunkBits);
        continue;
      }
      for (std::uint64_t w = 0; w < kWordsPerChunk; ++w) {
        std::uint64_t bits = c[w].load(std::memory_order_relaxed);
        std::uint64_t first = base + w * 64;
        for (int b = 0; b < 64; ++b) {
          bool set = (bits >> b) & 1;
          std::uint64_t seq = first + std::uint64_t(b);
          if (seq < n) {
            if (set) ++r.delivered; else ++r.missing;
          } else if (set) {
            ++r.unexpected;
          }
        }
      }
    }
  }
  return r;
}

}  // namespace synchmess::bench
