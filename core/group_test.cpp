#include "core/group.h"

#include <array>
#include <atomic>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "core/test_support.h"

namespace synchmess {
namespace {

using testing::IoThread;

std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s)); }

std::string take(Group& g) {
  auto m = g.receive();
  if (!m) return {};
  return std::string(reinterpret_cast<const char*>(m->data()), m->size());
}

struct CountingListener : GroupListener {
  std::atomic<int> calls{0};
  void on_readable(Group&) noexcept override { calls++; }
};

class GroupTest : public ::testing::Test {
 protected:
  IoThread io;
  Limits limits;
  CountingListener listener;
  Group group{io.executor(), limits, {.descriptor = 7, .listener = &listener}};
  ~GroupTest() override {
    group.shutdown();
    io.stop();
  }
};

TEST_F(GroupTest, SendThenReceiveFifo) {
  EXPECT_EQ(group.descriptor(), 7u);
  EXPECT_EQ(group.send(bytes("one")).value(), 3u);
  EXPECT_EQ(group.send(bytes("two")).value(), 3u);
  EXPECT_TRUE(group.readable());
  EXPECT_EQ(take(group), "one");
  EXPECT_EQ(take(group), "two");
  EXPECT_FALSE(group.readable());
  EXPECT_EQ(group.receive(), nullptr);
  EXPECT_EQ(listener.calls.load(), 2);
}

TEST_F(GroupTest, EmptyWriteQueuesNothing) {
  EXPECT_EQ(group.send({}).value(), 0u);
  EXPECT_FALSE(group.readable());
}

TEST_F(GroupTest, ShortBufferConsumesWholeMessageAndReturnsCopied) {
  group.send(bytes("abcdef")).value();
  group.send(bytes("next")).value();
  std::array<std::byte, 4> buf{};
  EXPECT_EQ(group.receive_into(buf), 4u);
  EXPECT_EQ(std::memcmp(buf.data(), "abcd", 4), 0);
  EXPECT_EQ(take(group), "next");
  EXPECT_EQ(group.stored_bytes(), 0u);
}

TEST_F(GroupTest, MessageSizeLimit) {
  std::string big(1024, 'x');
  EXPECT_EQ(group.send(bytes(big)).value(), 1024u);
  big.push_back('x');
  EXPECT_EQ(group.send(bytes(big)).error(), Errc::message_too_big);
  limits.max_message_size = 2048;
  EXPECT_EQ(group.send(bytes(big)).value(), 1025u);
}

TEST_F(GroupTest, StorageLimitCountsBytesAndOverheadPerMessage) {
  // Room for exactly two 5-byte messages: the limit is hit at the exact byte.
  limits.max_storage_size = 2 * storage_charge(5);
  EXPECT_TRUE(group.send(bytes("12345")));
  EXPECT_TRUE(group.send(bytes("12345")));
  EXPECT_EQ(group.send(bytes("1")).error(), Errc::storage_full);
  EXPECT_EQ(group.stored_bytes(), 2 * storage_charge(5));
  take(group);
  EXPECT_EQ(group.stored_bytes(), storage_charge(5));
  EXPECT_TRUE(group.send(bytes("12345")));
  EXPECT_EQ(group.send(bytes("1")).error(), Errc::storage_full);
}

TEST_F(GroupTest, OverheadBoundsTheNumberOfSmallMessages) {
  limits.max_storage_size = 100 * storage_charge(1) + storage_charge(1) - 1;
  int stored = 0;
  while (group.send(bytes("x"))) ++stored;
  EXPECT_EQ(stored, 100);
  EXPECT_EQ(Limits::message_overhead, std::size_t{SYNCHMESS_MESSAGE_OVERHEAD});
}

TEST_F(GroupTest, ShrinkingStorageKeepsStoredMessages) {
  group.send(bytes("aaaa")).value();
  group.send(bytes("bbbb")).value();
  limits.max_storage_size = storage_charge(2);
  EXPECT_EQ(group.send(bytes("c")).error(), Errc::storage_full);
  EXPECT_EQ(take(group), "aaaa");
  EXPECT_EQ(take(group), "bbbb");
  EXPECT_TRUE(group.send(bytes("c")));
}

TEST_F(GroupTest, DelayedMessageReservesStorageAtWrite) {
  limits.max_storage_size = storage_charge(8);
  ASSERT_TRUE(group.set_send_delay(60000));
  EXPECT_EQ(group.send(bytes("12345")).value(), 5u);
  EXPECT_EQ(group.stored_bytes(), storage_charge(5));
  EXPECT_EQ(group.send(bytes("12345")).error(), Errc::storage_full);
  EXPECT_EQ(group.revoke_delayed(), 1u);
  EXPECT_EQ(group.stored_bytes(), 0u);
}

TEST_F(GroupTest, BarrierThroughTheGroup) {
  std::atomic<int> woke{0};
  group.sleep([&](Result<void> r) { woke += r ? 1 : 100; });
  group.sleep([&](Result<void> r) { woke += r ? 1 : 100; });
  EXPECT_EQ(group.awake(), 2u);
  EXPECT_EQ(woke.load(), 2);
}

TEST_F(GroupTest, ShutdownInterruptsSleepers) {
  std::atomic<int> interrupted{0};
  group.sleep([&](Result<void> r) {
    if (!r && r.error() == Errc::interrupted) interrupted++;
  });
  group.shutdown();
  EXPECT_EQ(interrupted.load(), 1);
}

}  // namespace
}  // namespace synchmess
