// bench_units_test.cpp - unit tests of the bench's building blocks:
// LogHistogram, SeenSet and the message codec as the bench uses it.
#include <gtest/gtest.h>

#include <cstring>
#include <thread>
#include <vector>

#include "bench.h"
#include "sm_codec.h"

namespace synchmess::bench {
namespace {

TEST(LogHistogram, SmallValuesAreExact) {
  LogHistogram h;
  for (std::uint64_t v = 0; v < 32; ++v) h.record(v);
  EXPECT_EQ(h.count(), 32u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 31u);
  EXPECT_EQ(h.percentile(0.5), 15u);
  EXPECT_EQ(h.percentile(1.0), 31u);
  EXPECT_EQ(LogHistogram().percentile(0.5), 0u);  // empty
}

TEST(LogHistogram, PercentileWithinThreePercentAndNeverBelow) {
  LogHistogram h;
  for (std::uint64_t v = 1; v <= 100000; ++v) h.record(v * 37);
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    EXPECT_GE(double(h.percentile(q)), q * 100000 * 37 * 0.999) << q;
    EXPECT_LE(double(h.percentile(q)), q * 100000 * 37 * 1.035) << q;
  }
  EXPECT_EQ(h.max(), 3700000u);
  EXPECT_DOUBLE_EQ(h.mean(), 37.0 * 100001 / 2);
}

TEST(LogHistogram, MergeEqualsRecordingEverything) {
  LogHistogram a, b, all;
  for (std::uint64_t v = 0; v < 5000; ++v) {
    (v % 2 ? a : b).record(v * v);
    all.record(v * v);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.max(), all.max());
  EXPECT_EQ(a.min(), all.min());
  for (double q : {0.1, 0.5, 0.99}) EXPECT_EQ(a.percentile(q), all.percentile(q)) << q;
}

TEST(LogHistogram, HugeValuesLandInTheLastBucket) {
  LogHistogram h;
  h.record(~std::uint64_t(0) / 2);
  EXPECT_EQ(h.percentile(0.5), h.max());
}

TEST(SeenSet, DuplicatesMissingAndUnexpected) {
  SeenSet s(2);
  EXPECT_TRUE(s.mark(0, 0));
  EXPECT_TRUE(s.mark(0, 2));
  EXPECT_FALSE(s.mark(0, 2));  // duplicate
  EXPECT_TRUE(s.mark(1, SeenSet::kChunkBits + 5));
  EXPECT_FALSE(s.mark(7, 0));  // producer out of range
  DeliveryCheck c = s.check({3, SeenSet::kChunkBits + 6});
  EXPECT_EQ(c.expected, 3 + SeenSet::kChunkBits + 6);
  EXPECT_EQ(c.delivered, 3u);
  EXPECT_EQ(c.missing, 1 + SeenSet::kChunkBits + 5);
  EXPECT_EQ(c.unexpected, 1u);  // the producer out of range
  EXPECT_EQ(s.check({1, 0}).unexpected, 3u);
}

TEST(SeenSet, ConcurrentMarksCountEachOnce) {
  SeenSet s(1);
  constexpr std::uint64_t kN = 3 * SeenSet::kChunkBits;
  std::vector<std::thread> threads;
  std::atomic<std::uint64_t> firsts{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (std::uint64_t i = 0; i < kN; ++i) firsts += s.mark(0, i);
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(firsts.load(), kN);
  DeliveryCheck c = s.check({kN});
  EXPECT_EQ(c.delivered, kN);
  EXPECT_EQ(c.missing, 0u);
}

TEST(Codec, RoundTripAndEveryKindOfDamage) {
  std::vector<unsigned char> buf(128, 0);
  std::strcpy(reinterpret_cast<char*>(buf.data()), "SynchMess producer 3 message 12345");
  smc_fields in{3, 17, 12345, 99}, out{};
  smc_seal(buf.data(), buf.size(), &in);
  ASSERT_EQ(smc_open(buf.data(), buf.size(), &out), SMC_OK);
  EXPECT_EQ(out.producer, 3u);
  EXPECT_EQ(out.group, 17u);
  EXPECT_EQ(out.seq, 12345u);
  EXPECT_EQ(out.sent_ns, 99u);
  in.sent_ns = 100;  // the bench's retry: re-seal the same body
  smc_seal(buf.data(), buf.size(), &in);
  ASSERT_EQ(smc_open(buf.data(), buf.size(), &out), SMC_OK);
  EXPECT_EQ(out.sent_ns, 100u);
  EXPECT_EQ(smc_open(buf.data(), 127, &out), SMC_BAD_MAGIC);  // truncated
  EXPECT_EQ(smc_open(buf.data(), SMC_TRAILER_SIZE - 1, &out), SMC_TOO_SHORT);
  std::vector<unsigned char> longer(buf);
  longer.insert(longer.begin(), 8, 0);  // a longer message with the same trailer
  EXPECT_EQ(smc_open(longer.data(), longer.size(), &out), SMC_BAD_LENGTH);
  for (std::size_t i : {std::size_t(5), buf.size() - 20, buf.size() - 1}) {  // body, trailer, checksum
    std::vector<unsigned char> bad(buf);
    bad[i] ^= 1;
    EXPECT_NE(smc_open(bad.data(), bad.size(), &out), SMC_OK) << i;
  }
  smc_seal(buf.data(), SMC_TRAILER_SIZE, &in);  // the smallest message: the trailer alone
  ASSERT_EQ(smc_open(buf.data(), SMC_TRAILER_SIZE, &out), SMC_OK);
  EXPECT_EQ(out.seq, 12345u);
}

}  // namespace
}  // namespace synchmess::bench
