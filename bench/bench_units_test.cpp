// bench_units_test.cpp - unit tests of the bench's own building blocks:
// LogHistogram, SeenSet and the message format.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "histogram.h"
#include "message.h"
#include "seen_set.h"

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
}

TEST(LogHistogram, PercentileWithinThreePercentAndNeverBelow) {
  LogHistogram h;
  for (std::uint64_t v = 1; v <= 100000; ++v) h.record(v * 37);
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    double truth = q * 100000 * 37;
    double got = double(h.percentile(q));
    EXPECT_GE(got, truth * 0.999) << q;
    EXPECT_LE(got, truth * 1.035) << q;
  }
  EXPECT_EQ(h.max(), 3700000u);
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
  EXPECT_EQ(a.percentile(0.99), all.percentile(0.99));
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
  EXPECT_EQ(s.out_of_range(), 1u);
  DeliveryCheck c = s.check({3, SeenSet::kChunkBits + 6});
  EXPECT_EQ(c.expected, 3 + SeenSet::kChunkBits + 6);
  EXPECT_EQ(c.delivered, 3u);
  EXPECT_EQ(c.missing, 1 + SeenSet::kChunkBits + 5);
  EXPECT_EQ(c.unexpected, 0u);
  EXPECT_EQ(s.check({1, 0}).unexpected, 2u);
}

TEST(SeenSet, ConcurrentMarksCountEachOnce) {
  SeenSet s(1);
  constexpr std::uint64_t kN = 3 * SeenSet::kChunkBits;
  std::vector<std::thread> threads;
  std::atomic<std::uint64_t> firsts{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      std::uint64_t mine = 0;
      for (std::uint64_t i = 0; i < kN; ++i) mine += s.mark(0, i);
      firsts += mine;
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(firsts.load(), kN);
  DeliveryCheck c = s.check({kN});
  EXPECT_EQ(c.delivered, kN);
  EXPECT_EQ(c.missing, 0u);
}

TEST(Message, RoundTripAndCorruption) {
  std::vector<std::byte> buf(128);
  encode_message(buf, 3, 12345, 99);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(buf.data())),
            "SynchMess producer 3 message 12345");
  MessageTrailer t;
  ASSERT_TRUE(verify_message(buf, 128, &t));
  EXPECT_EQ(t.producer, 3u);
  EXPECT_EQ(t.seq, 12345u);
  EXPECT_EQ(t.sent_ns, 99u);
  restamp_message(buf, 100);
  ASSERT_TRUE(verify_message(buf, 128, &t));
  EXPECT_EQ(t.sent_ns, 100u);
  EXPECT_FALSE(verify_message(std::span(buf).first(127), 128, &t));
  buf[5] ^= std::byte{1};
  EXPECT_FALSE(verify_message(buf, 128, &t));
}

TEST(Message, SmallestSizeStillCarriesTheTrailer) {
  std::vector<std::byte> buf(kMinMessageSize);
  encode_message(buf, 1, 2, 3);
  MessageTrailer t;
  ASSERT_TRUE(verify_message(buf, kMinMessageSize, &t));
  EXPECT_EQ(t.seq, 2u);
}

}  // namespace
}  // namespace synchmess::bench
