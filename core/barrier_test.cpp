#include "core/barrier.h"

#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace synchmess {
namespace {

struct Outcome {
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  std::atomic<int> last_error{-1};
  Barrier::Handler handler() {
    return [this](Result<void> r) {
      if (r) {
        ok++;
      } else {
        last_error = static_cast<int>(r.error());
        failed++;
      }
    };
  }
};

TEST(Barrier, AwakeWithoutSleepersCountsZero) {
  Barrier b;
  EXPECT_EQ(b.awake(), 0u);
}

TEST(Barrier, AwakeCompletesEverySleeperOnce) {
  Barrier b;
  Outcome o;
  for (int i = 0; i < 3; ++i) EXPECT_NE(b.sleep(o.handler()), 0u);
  EXPECT_EQ(b.sleepers(), 3u);
  EXPECT_EQ(b.awake(), 3u);
  EXPECT_EQ(o.ok.load(), 3);
  EXPECT_EQ(b.awake(), 0u);
  EXPECT_EQ(o.ok.load(), 3);
}

TEST(Barrier, CancelledSleeperIsGoneAndNotCounted) {
  Barrier b;
  Outcome o;
  auto t1 = b.sleep(o.handler());
  b.sleep(o.handler());
  EXPECT_TRUE(b.cancel(t1, Errc::interrupted));
  EXPECT_EQ(o.failed.load(), 1);
  EXPECT_EQ(o.last_error.load(), static_cast<int>(Errc::interrupted));
  EXPECT_FALSE(b.cancel(t1, Errc::interrupted));  // already gone
  EXPECT_EQ(b.awake(), 1u);
  EXPECT_EQ(o.ok.load(), 1);
}

TEST(Barrier, CancelAfterAwakeDoesNothing) {
  Barrier b;
  Outcome o;
  auto t = b.sleep(o.handler());
  EXPECT_EQ(b.awake(), 1u);
  EXPECT_FALSE(b.cancel(t, Errc::interrupted));
  EXPECT_EQ(o.ok.load(), 1);
  EXPECT_EQ(o.failed.load(), 0);
}

TEST(Barrier, ShutdownInterruptsSleepersAndRefusesNewOnes) {
  Barrier b;
  Outcome o;
  b.sleep(o.handler());
  b.shutdown();
  EXPECT_EQ(o.failed.load(), 1);
  EXPECT_EQ(o.last_error.load(), static_cast<int>(Errc::interrupted));
  EXPECT_EQ(b.sleep(o.handler()), 0u);
  EXPECT_EQ(o.failed.load(), 2);
  EXPECT_EQ(o.last_error.load(), static_cast<int>(Errc::shutting_down));
  EXPECT_EQ(b.awake(), 0u);
}

TEST(Barrier, HandlerMayCallBackIntoTheBarrier) {
  Barrier b;
  int again = 0;
  b.sleep([&](Result<void>) { again = static_cast<int>(b.awake()); });
  EXPECT_EQ(b.awake(), 1u);
  EXPECT_EQ(again, 0);
}

// Sleep, cancel and awake race; every sleeper completes exactly once and
// the counts add up.
TEST(Barrier, AwakeRacesSleepAndCancel) {
  Barrier b;
  constexpr int sleepers_per_thread = 2000;
  std::atomic<int> completed{0}, woken_ok{0}, cancelled{0};
  std::atomic<unsigned> awake_count{0};
  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < sleepers_per_thread; ++i) {
        auto ticket = b.sleep([&](Result<void> r) {
          (r ? woken_ok : cancelled)++;
          completed++;
        });
        if ((i + t) % 2 == 0) b.cancel(ticket, Errc::interrupted);
      }
    });
  std::thread waker([&] {
    while (!done.load()) awake_count += b.awake();
  });
  for (auto& th : threads) th.join();
  done = true;
  waker.join();
  awake_count += b.awake();
  EXPECT_EQ(completed.load(), 2 * sleepers_per_thread);
  EXPECT_EQ(static_cast<int>(awake_count.load()), woken_ok.load());
  EXPECT_EQ(woken_ok.load() + cancelled.load(), 2 * sleepers_per_thread);
}

}  // namespace
}  // namespace synchmess
