#include "core/message_queue.h"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

// Live heap blocks allocated through the replaceable operator new of this
// test binary, counted per thread so other threads cannot disturb a test.
// Every non-aligned form of new and delete is replaced (all on malloc and
// free), so a block is always freed by the family that allocated it; the
// sanitizers still see every malloc and free.
namespace {
thread_local long live_blocks = 0;

void* counted_new(std::size_t n) noexcept {
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p != nullptr) ++live_blocks;
  return p;
}
void counted_delete(void* p) noexcept {
  if (p == nullptr) return;
  --live_blocks;
  std::free(p);
}
void* counted_new_or_throw(std::size_t n) {
  if (void* p = counted_new(n)) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t n) { return counted_new_or_throw(n); }
void* operator new[](std::size_t n) { return counted_new_or_throw(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_new(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_new(n); }
void operator delete(void* p) noexcept { counted_delete(p); }
void operator delete[](void* p) noexcept { counted_delete(p); }
void operator delete(void* p, std::size_t) noexcept { counted_delete(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_delete(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { counted_delete(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { counted_delete(p); }

namespace synchmess {
namespace {

struct Payload {
  std::uint32_t producer;
  std::uint32_t seq;
  std::uint64_t check;
};

std::uint64_t checksum(std::uint32_t p, std::uint32_t s) {
  return (std::uint64_t{p} * 0x9E3779B97F4A7C15ull) ^ (s * 0xC2B2AE3D27D4EB4Full) ^ 0x5bd1e995;
}

MessagePtr make(std::uint32_t p, std::uint32_t s) {
  Payload pl{p, s, checksum(p, s)};
  return Message::create(std::as_bytes(std::span(&pl, 1)));
}

Payload read(const Message& m) {
  Payload pl;
  EXPECT_EQ(m.size(), sizeof pl);
  std::memcpy(&pl, m.data(), sizeof pl);
  return pl;
}

TEST(MessageQueue, EmptyPopsNothing) {
  MessageQueue q(4);
  EXPECT_EQ(q.pop(), nullptr);
  EXPECT_TRUE(q.empty());
}

TEST(MessageQueue, FifoSingleThread) {
  MessageQueue q(2);  // grows past the reserve
  for (std::uint32_t i = 0; i < 1000; ++i) EXPECT_EQ(q.push(make(0, i)), nullptr);
  EXPECT_EQ(q.size(), 1000u);
  for (std::uint32_t i = 0; i < 1000; ++i) {
    auto m = q.pop();
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(read(*m).seq, i);
  }
  EXPECT_EQ(q.pop(), nullptr);
}

TEST(MessageQueue, DestructorFreesQueuedMessages) {
  const long before = live_blocks;
  {
    MessageQueue q(4);  // grows past the reserve too
    for (std::uint32_t i = 0; i < 10; ++i) ASSERT_EQ(q.push(make(0, i)), nullptr);
    // The counter sees the messages (so the check below means something).
    EXPECT_GE(live_blocks - before, 10);
  }
  EXPECT_EQ(live_blocks, before) << "blocks left behind by a destroyed queue";
}

// N producers and N consumers: nothing lost, duplicated or corrupted, and
// each consumer sees every producer's messages in increasing order.
TEST(MessageQueue, ConcurrentProducersConsumersKeepPerProducerOrder) {
  constexpr std::uint32_t producers = 4, consumers = 4, per_producer = 20000;
  MessageQueue q(64);
  std::atomic<std::uint32_t> consumed{0};
  std::vector<std::vector<std::uint8_t>> seen(producers, std::vector<std::uint8_t>(per_producer));
  std::atomic<bool> bad{false};
  std::vector<std::thread> threads;
  for (std::uint32_t p = 0; p < producers; ++p)
    threads.emplace_back([&, p] {
      for (std::uint32_t s = 0; s < per_producer; ++s) ASSERT_EQ(q.push(make(p, s)), nullptr);
    });
  std::vector<std::vector<std::uint64_t>> last(consumers,
                                               std::vector<std::uint64_t>(producers, 0));
  for (std::uint32_t c = 0; c < consumers; ++c)
    threads.emplace_back([&, c] {
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (consumed.load() < producers * per_producer &&
             std::chrono::steady_clock::now() < deadline) {
        auto m = q.pop();
        if (!m) continue;
        Payload pl = read(*m);
        if (pl.producer >= producers || pl.seq >= per_producer ||
            pl.check != checksum(pl.producer, pl.seq)) {
          bad = true;
        } else {
          // Per consumer, a producer's messages come in increasing order.
          if (pl.seq + 1 <= last[c][pl.producer]) bad = true;
          last[c][pl.producer] = pl.seq + 1;
          seen[pl.producer][pl.seq]++;  // distinct slots per message
        }
        consumed.fetch_add(1);
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_FALSE(bad.load());
  ASSERT_EQ(consumed.load(), producers * per_producer);
  for (auto& row : seen)
    for (auto n : row) ASSERT_EQ(n, 1);
  EXPECT_TRUE(q.empty());
}

}  // namespace
}  // namespace synchmess
