#include "core/registry.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/test_support.h"

namespace synchmess {
namespace {

using testing::IoThread;

TEST(Registry, InstallIsIdempotentAndChecksRange) {
  IoThread io;
  Limits limits;
  Registry r(io.executor(), limits, {});
  EXPECT_EQ(r.max_groups(), 64u);
  EXPECT_EQ(r.install(0).error(), Errc::bad_descriptor);
  EXPECT_EQ(r.install(65).error(), Errc::bad_descriptor);
  EXPECT_EQ(r.find(3), nullptr);
  auto a = r.install(3).value();
  EXPECT_TRUE(a.created);
  auto b = r.install(3).value();
  EXPECT_FALSE(b.created);
  EXPECT_EQ(a.group, b.group);
  EXPECT_EQ(r.find(3), a.group);
  EXPECT_EQ(a.group->descriptor(), 3u);
  EXPECT_TRUE(r.install(64));
  r.shutdown();
  EXPECT_EQ(r.install(5).error(), Errc::shutting_down);
  EXPECT_TRUE(r.install(3));  // existing groups are still found
  io.stop();
}

TEST(Registry, ConfigurableUpTo4096AndBeyond) {
  IoThread io;
  Limits limits;
  Registry r(io.executor(), limits, {.max_groups = 4096});
  EXPECT_EQ(r.max_groups(), 4096u);
  EXPECT_TRUE(r.install(4096));
  EXPECT_EQ(r.install(4097).error(), Errc::bad_descriptor);
  EXPECT_EQ(r.find(4097), nullptr);
  r.shutdown();
  io.stop();
}

// Installs at the edges of 1..max_groups: both ends work, everything just
// outside (and far outside) is bad_descriptor, and find() answers nullptr
// there without touching anything beyond the table.
void expect_range(Registry& r, unsigned max) {
  ASSERT_EQ(r.max_groups(), max);
  EXPECT_EQ(r.install(0).error(), Errc::bad_descriptor);
  EXPECT_EQ(r.install(max + 1).error(), Errc::bad_descriptor);
  EXPECT_EQ(r.install(max + 2).error(), Errc::bad_descriptor);
  EXPECT_EQ(r.install(RegistryOptions::largest_max_groups + 1).error(), Errc::bad_descriptor);
  EXPECT_EQ(r.install(~0u).error(), Errc::bad_descriptor);
  EXPECT_EQ(r.find(0), nullptr);
  EXPECT_EQ(r.find(max + 1), nullptr);
  EXPECT_EQ(r.find(~0u), nullptr);
  auto first = r.install(1);
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->created);
  EXPECT_EQ(first->group->descriptor(), 1u);
  EXPECT_EQ(r.find(1), first->group);
  auto last = r.install(max);
  ASSERT_TRUE(last);
  EXPECT_EQ(last->group->descriptor(), max);
  EXPECT_EQ(r.find(max), last->group);
  EXPECT_EQ(r.find(max + 1), nullptr);
}

TEST(Registry, LargestMaxGroupsIsTheLimit) {
  IoThread io;
  Limits limits;
  Registry r(io.executor(), limits, {.max_groups = RegistryOptions::largest_max_groups});
  expect_range(r, RegistryOptions::largest_max_groups);
  r.shutdown();
  io.stop();
}

TEST(Registry, MaxGroupsAboveTheLargestIsClamped) {
  for (unsigned asked : {RegistryOptions::largest_max_groups + 1, ~0u}) {
    SCOPED_TRACE(asked);
    IoThread io;
    Limits limits;
    Registry r(io.executor(), limits, {.max_groups = asked});
    expect_range(r, RegistryOptions::largest_max_groups);
    r.shutdown();
    io.stop();
  }
}

TEST(Registry, MaxGroupsZeroIsClampedToOne) {
  IoThread io;
  Limits limits;
  Registry r(io.executor(), limits, {.max_groups = 0});
  expect_range(r, 1);
  r.shutdown();
  io.stop();
}

TEST(Registry, DefaultRangeIsOneTo64) {
  IoThread io;
  Limits limits;
  Registry r(io.executor(), limits, {});
  expect_range(r, RegistryOptions::default_max_groups);
  EXPECT_EQ(RegistryOptions::default_max_groups, 64u);
  r.shutdown();
  io.stop();
}

TEST(Registry, ConcurrentInstallsCreateOneGroup) {
  IoThread io;
  Limits limits;
  Registry r(io.executor(), limits, {});
  std::atomic<int> created{0};
  std::vector<Group*> seen(8);
  std::vector<std::thread> ts;
  for (int i = 0; i < 8; ++i)
    ts.emplace_back([&, i] {
      auto x = r.install(9).value();
      if (x.created) created++;
      seen[i] = x.group;
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(created.load(), 1);
  for (auto* g : seen) EXPECT_EQ(g, seen[0]);
  r.shutdown();
  io.stop();
}

// 4 producers x 4 consumers on 8 groups with random group choice: every
// message arrives exactly once, intact, and per (producer, group) in order.
TEST(Registry, ProducersAndConsumersOnSeveralGroups) {
  IoThread io;
  Limits limits;
  Registry r(io.executor(), limits, {.max_groups = 8});
  for (unsigned d = 1; d <= 8; ++d) ASSERT_TRUE(r.install(d));
  struct Payload {
    std::uint32_t producer, group, seq;
    std::uint32_t check;
  };
  constexpr unsigned producers = 4, consumers = 4, per_producer = 20000;
  auto check = [](const Payload& p) { return (p.producer * 2654435761u) ^ (p.group * 40503u) ^ p.seq; };
  std::atomic<unsigned> consumed{0};
  std::atomic<bool> bad{false};
  std::vector<std::thread> ts;
  std::vector<std::vector<std::uint8_t>> seen(producers, std::vector<std::uint8_t>(per_producer));
  for (unsigned p = 0; p < producers; ++p)
    ts.emplace_back([&, p] {
      std::mt19937 rng(p);
      std::vector<std::uint32_t> next(9, 0);
      for (unsigned s = 0; s < per_producer; ++s) {
        unsigned g = 1 + rng() % 8;
        // seq carries the global sequence; per-group order is checked on
        // the global sequence, which grows along each group too.
        Payload pl{p, g, s, 0};
        pl.check = check(pl);
        while (!r.find(g)->send(std::as_bytes(std::span(&pl, 1)))) std::this_thread::yield();
      }
    });
  std::vector<std::vector<std::vector<std::int64_t>>> last(
      consumers, std::vector<std::vector<std::int64_t>>(producers, std::vector<std::int64_t>(9, -1)));
  for (unsigned c = 0; c < consumers; ++c)
    ts.emplace_back([&, c] {
      std::mt19937 rng(100 + c);
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (consumed.load() < producers * per_producer &&
             std::chrono::steady_clock::now() < deadline) {
        unsigned g = 1 + rng() % 8;
        auto m = r.find(g)->receive();
        if (!m) continue;
        Payload pl;
        if (m->size() != sizeof pl) { bad = true; continue; }
        std::memcpy(&pl, m->data(), sizeof pl);
        if (pl.producer >= producers || pl.seq >= per_producer || pl.group != g ||
            pl.check != check(pl)) {
          bad = true;
        } else {
          auto& l = last[c][pl.producer][g];
          if (static_cast<std::int64_t>(pl.seq) <= l) bad = true;
          l = pl.seq;
          seen[pl.producer][pl.seq]++;
        }
        consumed++;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_FALSE(bad.load());
  ASSERT_EQ(consumed.load(), producers * per_producer);
  for (auto& row : seen)
    for (auto n : row) ASSERT_EQ(n, 1);
  for (unsigned d = 1; d <= 8; ++d) EXPECT_EQ(r.find(d)->stored_bytes(), 0u);
  r.shutdown();
  io.stop();
}

}  // namespace
}  // namespace synchmess
