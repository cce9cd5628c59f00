#include "cluster/work_pool.h"

#include <atomic>
#include <chrono>
#include <future>

#include <gtest/gtest.h>

namespace synchmess {
namespace {

TEST(WorkPool, RunsEveryJobWithAThreadIndex) {
  WorkPool pool(3, 100);
  std::atomic<int> ran{0}, bad_index{0};
  std::promise<void> all;
  for (int i = 0; i < 50; ++i)
    ASSERT_TRUE(pool.post({.run = [&](unsigned t) {
                             if (t >= 3) ++bad_index;
                             if (++ran == 50) all.set_value();
                           },
                           .cancel = {}}));
  ASSERT_EQ(all.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(bad_index.load(), 0);
}

TEST(WorkPool, RefusesBeyondCapacityAndCancelsOnStop) {
  WorkPool pool(1, 2);
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::promise<void> started;
  ASSERT_TRUE(pool.post({.run = [&, gate](unsigned) { started.set_value(); gate.wait(); }, .cancel = {}}));
  ASSERT_EQ(started.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  std::atomic<int> cancelled{0}, ran{0};
  EXPECT_TRUE(pool.post({.run = [&](unsigned) { ++ran; }, .cancel = [&] { ++cancelled; }}));
  EXPECT_TRUE(pool.post({.run = [&](unsigned) { ++ran; }, .cancel = [&] { ++cancelled; }}));
  EXPECT_FALSE(pool.post({.run = [&](unsigned) { ++ran; }, .cancel = [&] { ++cancelled; }}));  // full
  std::thread stopper([&] { pool.stop(); });
  // stop() cancels the two queued jobs before it waits for the running one.
  for (int i = 0; i < 1000 && cancelled < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  release.set_value();
  stopper.join();
  EXPECT_EQ(cancelled.load(), 2);
  EXPECT_EQ(ran.load(), 0);
  EXPECT_FALSE(pool.post({.run = [&](unsigned) { ++ran; }, .cancel = {}}));  // stopped
}

}  // namespace
}  // namespace synchmess
