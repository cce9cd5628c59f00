// Group::stats() and GroupCounters: what each operation counts, that failed
// operations count nothing, and that concurrent senders, receivers, the
// delay line and a reader of the counters never see a gauge below zero and
// end with exact totals.
#include <atomic>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/group.h"
#include "core/registry.h"
#include "core/test_support.h"

namespace synchmess {
namespace {

using testing::eventually;
using testing::IoThread;

std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s)); }

class GroupStatsTest : public ::testing::Test {
 protected:
  IoThread io;
  Limits limits;
  Group group{io.executor(), limits, {.descriptor = 3}};
  ~GroupStatsTest() override {
    group.shutdown();
    io.stop();
  }
};

TEST_F(GroupStatsTest, FreshGroupCountsNothing) {
  GroupStats s = group.stats();
  EXPECT_EQ(s.queued_messages, 0u);
  EXPECT_EQ(s.queued_bytes, 0u);
  EXPECT_EQ(s.delayed_messages, 0u);
  EXPECT_EQ(s.delayed_bytes, 0u);
  EXPECT_EQ(s.stored_bytes, 0u);
  EXPECT_EQ(s.send_delay_ms, 0u);
  EXPECT_EQ(s.sleepers, 0u);
  EXPECT_EQ(s.open_files, 0u);
  EXPECT_EQ(s.sent + s.received + s.revoked + s.flushed, 0u);
}

TEST_F(GroupStatsTest, SendAndReceiveCountMessagesAndBytes) {
  ASSERT_TRUE(group.send(bytes("abc")));
  ASSERT_TRUE(group.send(bytes("defgh")));
  ASSERT_TRUE(group.send(bytes("ijklmno")));
  GroupStats s = group.stats();
  EXPECT_EQ(s.queued_messages, 3u);
  EXPECT_EQ(s.queued_bytes, 15u);
  EXPECT_EQ(s.stored_bytes, storage_charge(3) + storage_charge(5) + storage_charge(7));
  EXPECT_EQ(s.sent, 3u);
  EXPECT_EQ(s.received, 0u);
  ASSERT_TRUE(group.receive());
  s = group.stats();
  EXPECT_EQ(s.queued_messages, 2u);
  EXPECT_EQ(s.queued_bytes, 12u);
  EXPECT_EQ(s.received, 1u);
  EXPECT_EQ(s.sent, 3u);
  EXPECT_FALSE(group.receive() == nullptr);
  EXPECT_FALSE(group.receive() == nullptr);
  EXPECT_TRUE(group.receive() == nullptr);  // an empty read counts nothing
  s = group.stats();
  EXPECT_EQ(s.queued_messages, 0u);
  EXPECT_EQ(s.queued_bytes, 0u);
  EXPECT_EQ(s.received, 3u);
}

TEST_F(GroupStatsTest, RefusedWritesCountNothing) {
  limits.max_message_size = 4;
  limits.max_storage_size = storage_charge(4);
  EXPECT_EQ(group.send(bytes("12345")).error(), Errc::message_too_big);
  ASSERT_TRUE(group.send(bytes("1234")));
  EXPECT_EQ(group.send(bytes("1")).error(), Errc::storage_full);
  EXPECT_EQ(group.send(bytes("")).value(), 0u);
  GroupStats s = group.stats();
  EXPECT_EQ(s.sent, 1u);
  EXPECT_EQ(s.queued_messages, 1u);
  EXPECT_EQ(s.queued_bytes, 4u);
}

TEST_F(GroupStatsTest, DelayedThenFlushed) {
  ASSERT_TRUE(group.set_send_delay(600000));
  ASSERT_TRUE(group.send(bytes("1234")));
  ASSERT_TRUE(group.send(bytes("123456")));
  GroupStats s = group.stats();
  EXPECT_EQ(s.send_delay_ms, 600000u);
  EXPECT_EQ(s.delayed_messages, 2u);
  EXPECT_EQ(s.delayed_bytes, 10u);
  EXPECT_EQ(s.queued_messages, 0u);
  EXPECT_EQ(s.queued_bytes, 0u);
  EXPECT_EQ(s.stored_bytes, storage_charge(4) + storage_charge(6));
  EXPECT_EQ(s.sent, 2u);
  EXPECT_EQ(group.flush_delayed(), 2u);
  s = group.stats();
  EXPECT_EQ(s.delayed_messages, 0u);
  EXPECT_EQ(s.delayed_bytes, 0u);
  EXPECT_EQ(s.queued_messages, 2u);
  EXPECT_EQ(s.queued_bytes, 10u);
  EXPECT_EQ(s.flushed, 2u);
  EXPECT_EQ(s.revoked, 0u);
}

TEST_F(GroupStatsTest, DelayedThenRevoked) {
  ASSERT_TRUE(group.set_send_delay(600000));
  ASSERT_TRUE(group.send(bytes("12")));
  ASSERT_TRUE(group.send(bytes("345")));
  ASSERT_TRUE(group.send(bytes("6789")));
  EXPECT_EQ(group.revoke_delayed(), 3u);
  GroupStats s = group.stats();
  EXPECT_EQ(s.revoked, 3u);
  EXPECT_EQ(s.flushed, 0u);
  EXPECT_EQ(s.delayed_messages, 0u);
  EXPECT_EQ(s.delayed_bytes, 0u);
  EXPECT_EQ(s.queued_messages, 0u);
  EXPECT_EQ(s.stored_bytes, 0u);
  EXPECT_EQ(s.sent, 3u);
}

TEST_F(GroupStatsTest, ExpiredDelayMovesToTheQueueWithoutCountingAFlush) {
  ASSERT_TRUE(group.set_send_delay(20));
  ASSERT_TRUE(group.send(bytes("soon")));
  ASSERT_TRUE(eventually([&] { return group.stats().queued_messages == 1; }));
  GroupStats s = group.stats();
  EXPECT_EQ(s.delayed_messages, 0u);
  EXPECT_EQ(s.delayed_bytes, 0u);
  EXPECT_EQ(s.queued_bytes, 4u);
  EXPECT_EQ(s.flushed, 0u);
}

TEST_F(GroupStatsTest, SleepersAndOpenFiles) {
  auto t1 = group.sleep([](Result<void>) {});
  group.sleep([](Result<void>) {});
  EXPECT_EQ(group.stats().sleepers, 2u);
  EXPECT_TRUE(group.cancel_sleep(t1, Errc::interrupted));
  EXPECT_EQ(group.stats().sleepers, 1u);
  EXPECT_EQ(group.awake(), 1u);
  EXPECT_EQ(group.stats().sleepers, 0u);
  group.opened();
  group.opened();
  group.closed();
  EXPECT_EQ(group.stats().open_files, 1u);
}

TEST_F(GroupStatsTest, ShutdownDiscardsDelayedMessagesFromTheCounts) {
  ASSERT_TRUE(group.set_send_delay(600000));
  ASSERT_TRUE(group.send(bytes("x")));
  group.sleep([](Result<void>) {});
  group.shutdown();
  GroupStats s = group.stats();
  EXPECT_EQ(s.delayed_messages, 0u);
  EXPECT_EQ(s.delayed_bytes, 0u);
  EXPECT_EQ(s.sleepers, 0u);
  EXPECT_EQ(s.revoked, 0u);  // destroyed by the shutdown, not revoked
}

// Two senders (immediate and delayed messages, the delay line's timer and a
// flusher publishing), two receivers and a reader of the counters: no
// gauge may ever wrap below zero, and when all is drained the totals are
// exact.  Run under TSan by scripts/test (relaxed atomics, no data race).
TEST_F(GroupStatsTest, ConcurrentCountersStayConsistent) {
  constexpr unsigned senders = 2, per_sender = 20000;
  constexpr std::uint64_t wrapped = std::uint64_t{1} << 62;
  limits.max_storage_size = std::size_t{1} << 30;
  ASSERT_TRUE(group.set_send_delay(1));
  std::atomic<bool> sending{true}, bad{false};
  std::atomic<std::uint64_t> received{0}, reads{0};
  std::vector<std::thread> ts;
  for (unsigned p = 0; p < senders; ++p)
    ts.emplace_back([&, p] {
      std::string msg(1 + p, 'm');
      for (unsigned i = 0; i < per_sender; ++i)
        if (!group.send(bytes(msg))) bad = true;
    });
  for (int c = 0; c < 2; ++c)
    ts.emplace_back([&] {
      while (sending || group.stats().queued_messages + group.stats().delayed_messages > 0) {
        if (group.receive()) received++;
        group.flush_delayed();
      }
    });
  std::thread reader([&] {
    while (sending || received < senders * per_sender) {
      GroupStats s = group.stats();
      if (s.queued_bytes >= wrapped || s.delayed_messages >= wrapped || s.delayed_bytes >= wrapped ||
          s.queued_messages > senders * per_sender || s.received > senders * per_sender)
        bad = true;
      reads++;
    }
  });
  for (unsigned p = 0; p < senders; ++p) ts[p].join();
  sending = false;
  for (std::size_t i = senders; i < ts.size(); ++i) ts[i].join();
  reader.join();
  EXPECT_FALSE(bad.load());
  EXPECT_GT(reads.load(), 0u);
  GroupStats s = group.stats();
  EXPECT_EQ(s.sent, senders * per_sender);
  EXPECT_EQ(s.received, senders * per_sender);
  EXPECT_EQ(received.load(), senders * per_sender);
  EXPECT_EQ(s.queued_messages, 0u);
  EXPECT_EQ(s.queued_bytes, 0u);
  EXPECT_EQ(s.delayed_messages, 0u);
  EXPECT_EQ(s.delayed_bytes, 0u);
  EXPECT_EQ(s.stored_bytes, 0u);
  EXPECT_EQ(s.revoked, 0u);
  EXPECT_LE(s.flushed, senders * per_sender);
}

TEST(RegistryStats, InstalledCountAndFindFrom) {
  IoThread io;
  Limits limits;
  Registry r(io.executor(), limits, {.max_groups = 10});
  EXPECT_EQ(r.installed(), 0u);
  EXPECT_EQ(r.find_from(1), nullptr);
  ASSERT_TRUE(r.install(4));
  ASSERT_TRUE(r.install(9));
  ASSERT_TRUE(r.install(4));  // again: not a new group
  EXPECT_EQ(r.installed(), 2u);
  EXPECT_EQ(r.find_from(0)->descriptor(), 4u);
  EXPECT_EQ(r.find_from(1)->descriptor(), 4u);
  EXPECT_EQ(r.find_from(4)->descriptor(), 4u);
  EXPECT_EQ(r.find_from(5)->descriptor(), 9u);
  EXPECT_EQ(r.find_from(10), nullptr);
  EXPECT_EQ(r.find_from(4000000000u), nullptr);
  r.shutdown();
  io.stop();
}

}  // namespace
}  // namespace synchmess
