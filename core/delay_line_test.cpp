// Delays, flush and revoke, tested through Group (the line's only user).
#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/post.hpp>
#include <gtest/gtest.h>

#include "core/delay_line.h"
#include "core/group.h"
#include "core/test_support.h"

namespace synchmess {
namespace {

using namespace std::chrono_literals;
using testing::eventually;
using testing::IoThread;
using Clock = std::chrono::steady_clock;

std::span<const std::byte> bytes(const std::string& s) { return std::as_bytes(std::span(s)); }

std::string take(Group& g) {
  auto m = g.receive();
  return m ? std::string(reinterpret_cast<const char*>(m->data()), m->size()) : std::string();
}

class DelayTest : public ::testing::Test {
 protected:
  IoThread io;
  Limits limits;
  Group group{io.executor(), limits, {.descriptor = 1}};
  ~DelayTest() override {
    group.shutdown();
    io.stop();
  }
};

// Deadlines fall on whole milliseconds, never before the delay and less
// than 1 ms after it, and do not decrease with the time of the defer: so
// the timers of every group expiring in one millisecond fire together.
TEST(DelayLineDue, RoundsUpToTheNextMillisecond) {
  using std::chrono::milliseconds;
  using std::chrono::nanoseconds;
  const Clock::time_point base(std::chrono::seconds(1000));
  for (long ns : {0L, 1L, 999'999L, 1'000'000L, 1'000'001L, 123'456'789L}) {
    Clock::time_point now = base + nanoseconds(ns);
    Clock::time_point due = DelayLine::due_for(now, 50);
    EXPECT_GE(due, now + milliseconds(50)) << ns;
    EXPECT_LT(due, now + milliseconds(51)) << ns;
    EXPECT_EQ(due.time_since_epoch() % milliseconds(1), nanoseconds(0)) << ns;
  }
  EXPECT_EQ(DelayLine::due_for(base + nanoseconds(1), 7), DelayLine::due_for(base + nanoseconds(999'999), 7));
  EXPECT_LE(DelayLine::due_for(base + nanoseconds(999'999), 7), DelayLine::due_for(base + nanoseconds(1'000'001), 7));
  EXPECT_EQ(DelayLine::due_for(base, 0), base);
}

// No assertion here depends on how fast anything runs: the message is
// sampled until it shows up (at most 10 s), and every sample that sees it
// must come at least the delay after a time taken before the send.
TEST_F(DelayTest, DelayedMessageAppearsAfterTheDelayNotBefore) {
  constexpr auto delay = 150ms;
  ASSERT_TRUE(group.set_send_delay(150));
  auto start = Clock::now();
  EXPECT_EQ(group.send(bytes("late")).value(), 4u);
  bool readable = false;
  int samples = 0;
  for (auto end = Clock::now() + 10s; !readable && Clock::now() < end; ++samples) {
    // delayed() first: publication moves the message to the queue under
    // the line's lock, so "not readable" afterwards means it was pending.
    std::size_t pending = group.delayed();
    readable = group.readable();
    auto elapsed = Clock::now() - start;
    if (readable)
      ASSERT_GE(elapsed, delay) << "readable before its delay (sample " << samples << ")";
    else
      ASSERT_EQ(pending, 1u);
    if (!readable) std::this_thread::sleep_for(1ms);
  }
  ASSERT_TRUE(readable) << "a 150 ms delayed message not readable after 10 s";
  EXPECT_EQ(take(group), "late");
  EXPECT_EQ(group.delayed(), 0u);
  EXPECT_FALSE(group.readable());
}

// With a delay far longer than any test run, "not readable yet" holds by
// construction right after the send.
TEST_F(DelayTest, LongDelayedMessageIsPendingUntilFlushed) {
  ASSERT_TRUE(group.set_send_delay(3'600'000));
  EXPECT_EQ(group.send(bytes("held")).value(), 4u);
  EXPECT_FALSE(group.readable());
  EXPECT_EQ(group.delayed(), 1u);
  EXPECT_EQ(group.stored_bytes(), storage_charge(4));
  EXPECT_EQ(group.receive(), nullptr);
  EXPECT_EQ(group.flush_delayed(), 1u);
  EXPECT_EQ(group.delayed(), 0u);
  EXPECT_EQ(take(group), "held");
  EXPECT_EQ(group.stored_bytes(), 0u);
}

TEST_F(DelayTest, OrderKeptAcrossManyDelayedMessages) {
  ASSERT_TRUE(group.set_send_delay(20));
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(group.send(bytes(std::to_string(i))));
  ASSERT_TRUE(eventually([&] { return group.delayed() == 0; }));
  for (int i = 0; i < 200; ++i) ASSERT_EQ(take(group), std::to_string(i));
}

TEST_F(DelayTest, DelayCannotChangeWhileMessagesPending) {
  ASSERT_TRUE(group.set_send_delay(60000));
  group.send(bytes("x")).value();
  EXPECT_EQ(group.set_send_delay(0).error(), Errc::delay_pending);
  EXPECT_EQ(group.send_delay(), 60000u);
  group.flush_delayed();
  EXPECT_TRUE(group.set_send_delay(0));
  EXPECT_EQ(group.send(bytes("now")).value(), 3u);
  EXPECT_EQ(take(group), "x");
  EXPECT_EQ(take(group), "now");
}

TEST_F(DelayTest, FlushPublishesEverythingNowInOrder) {
  ASSERT_TRUE(group.set_send_delay(60000));
  for (int i = 0; i < 5; ++i) group.send(bytes(std::to_string(i))).value();
  EXPECT_EQ(group.flush_delayed(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(take(group), std::to_string(i));
  EXPECT_EQ(group.flush_delayed(), 0u);
}

// The executor's only thread is held while a message is sent, its deadline
// passes and it is revoked, so the timer cannot publish it first: revoke
// finds it by construction.  Once released, the timer's wait completes for
// a line with nothing in it, and a later message still comes out after its
// own delay.
TEST_F(DelayTest, RevokeDestroysPendingAndFreesStorage) {
  constexpr auto delay = 20ms;
  ASSERT_TRUE(group.set_send_delay(20));
  std::promise<void> entered, release;
  boost::asio::post(io.executor(), [&entered, held = release.get_future()] {
    entered.set_value();
    held.wait();
  });
  entered.get_future().wait();
  struct Releaser {
    std::promise<void>& p;
    bool done = false;
    void operator()() {
      if (!done) p.set_value();
      done = true;
    }
    ~Releaser() { (*this)(); }  // also on an early ASSERT return
  } releaser{release};

  group.send(bytes("gone")).value();
  auto sent = Clock::now();
  EXPECT_EQ(group.stored_bytes(), storage_charge(4));
  std::this_thread::sleep_until(sent + delay + 1ms);  // its deadline has passed
  EXPECT_EQ(group.revoke_delayed(), 1u);
  EXPECT_EQ(group.stored_bytes(), 0u);
  EXPECT_EQ(group.delayed(), 0u);
  EXPECT_FALSE(group.readable());
  EXPECT_EQ(group.flush_delayed(), 0u);
  EXPECT_FALSE(group.readable());
  releaser();

  // Only one timer wait is outstanding at a time, so once "later" is out
  // the wait armed for "gone" has completed.
  auto start = Clock::now();
  group.send(bytes("later")).value();
  ASSERT_TRUE(eventually([&] { return group.readable(); }));
  EXPECT_GE(Clock::now() - start, delay);
  EXPECT_EQ(take(group), "later");
  EXPECT_FALSE(group.readable());
  EXPECT_EQ(group.delayed(), 0u);
  EXPECT_EQ(group.stored_bytes(), 0u);
}

// A message's delay is its own: a shorter delay set after a flush (or a
// revoke) of longer-delayed messages must not wait for the timer armed for
// them.  Waits at most 10 s; the stale deadline is an hour away.
// DISABLED: fails on main (delay_line.cpp keeps the wait armed for the
// flushed head and defer() does not re-arm an earlier deadline); enable it
// with the fix.
TEST_F(DelayTest, ShorterDelayAfterFlushIsNotHeldByTheOldTimer) {
  ASSERT_TRUE(group.set_send_delay(3'600'000));
  group.send(bytes("old")).value();
  EXPECT_EQ(group.flush_delayed(), 1u);
  EXPECT_EQ(take(group), "old");
  ASSERT_TRUE(group.set_send_delay(20));
  auto start = Clock::now();
  group.send(bytes("new")).value();
  ASSERT_TRUE(eventually([&] { return group.readable(); }))
      << "a 20 ms delayed message waited for a timer armed an hour ahead";
  EXPECT_GE(Clock::now() - start, 20ms);
  EXPECT_EQ(take(group), "new");
}

TEST_F(DelayTest, ShorterDelayAfterRevokeIsNotHeldByTheOldTimer) {
  ASSERT_TRUE(group.set_send_delay(3'600'000));
  group.send(bytes("old")).value();
  EXPECT_EQ(group.revoke_delayed(), 1u);
  ASSERT_TRUE(group.set_send_delay(20));
  group.send(bytes("new")).value();
  ASSERT_TRUE(eventually([&] { return group.readable(); }))
      << "a 20 ms delayed message waited for a timer armed an hour ahead";
  EXPECT_EQ(take(group), "new");
}

TEST_F(DelayTest, TimerArmedForAnOldHeadStillServesNewMessages) {
  ASSERT_TRUE(group.set_send_delay(50));
  group.send(bytes("a")).value();
  group.flush_delayed();  // timer still armed for a's deadline
  group.send(bytes("b")).value();
  EXPECT_EQ(take(group), "a");
  ASSERT_TRUE(eventually([&] { return group.readable(); }));
  EXPECT_EQ(take(group), "b");
}

// Flush and revoke race the timer and concurrent delayed writers: every
// message is published exactly once or revoked, each writer's messages
// stay in order, and storage returns to zero.
TEST_F(DelayTest, FlushAndRevokeRaceTheTimer) {
  ASSERT_TRUE(group.set_send_delay(1));
  constexpr int writers = 2, per_writer = 3000;
  std::atomic<bool> stop{false};
  std::atomic<long> revoked{0}, received{0};
  std::vector<std::vector<int>> got(writers);
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w)
    threads.emplace_back([&, w] {
      for (int i = 0; i < per_writer; ++i) {
        std::string s = std::to_string(w) + ":" + std::to_string(i);
        while (!group.send(bytes(s))) std::this_thread::yield();
      }
    });
  std::thread flusher([&] {
    int n = 0;
    while (!stop.load()) {
      if (++n % 7 == 0)
        revoked += static_cast<long>(group.revoke_delayed());
      else
        group.flush_delayed();
      std::this_thread::yield();
    }
  });
  std::thread reader([&] {
    auto deadline = Clock::now() + 60s;
    while ((!stop.load() || group.readable()) && Clock::now() < deadline) {
      auto m = group.receive();
      if (!m) continue;
      std::string s(reinterpret_cast<const char*>(m->data()), m->size());
      auto colon = s.find(':');
      got[std::stoi(s.substr(0, colon))].push_back(std::stoi(s.substr(colon + 1)));
      received++;
    }
  });
  for (auto& t : threads) t.join();
  ASSERT_TRUE(eventually([&] { return group.delayed() == 0; }));
  stop = true;
  flusher.join();
  reader.join();
  EXPECT_EQ(received.load() + revoked.load(), writers * per_writer);
  for (auto& g : got)
    for (std::size_t i = 1; i < g.size(); ++i) ASSERT_LT(g[i - 1], g[i]);
  EXPECT_EQ(group.stored_bytes(), 0u);
}

}  // namespace
}  // namespace synchmess
