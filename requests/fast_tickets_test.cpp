// fast_tickets_test.cpp - the hand-out's tokens: one use, one uid, one
// group, a lifetime, a bounded table.
#include "requests/fast_tickets.h"

#include <set>

#include <gtest/gtest.h>

namespace synchmess {
namespace {

using Clock = FastTickets::Clock;
using namespace std::chrono_literals;

TEST(FastTickets, RedeemedOnceForItsUidAndGroup) {
  FastTickets t;
  auto now = Clock::now();
  auto a = t.issue(1000, 3, now);
  ASSERT_TRUE(a.has_value());
  EXPECT_NE(*a, 0u);
  EXPECT_TRUE(t.redeem(*a, 3, 1000, now + 1s).has_value());
  EXPECT_EQ(t.redeem(*a, 3, 1000, now + 1s).error(), Errc::access_denied) << "replayed";
  EXPECT_EQ(t.outstanding(), 0u);
}

TEST(FastTickets, WrongUidGroupOrUnknownTokenIsRefusedAndBurnsIt) {
  FastTickets t;
  auto now = Clock::now();
  auto a = t.issue(1000, 3, now).value();
  EXPECT_EQ(t.redeem(a, 3, 1001, now).error(), Errc::access_denied) << "another uid";
  EXPECT_EQ(t.redeem(a, 3, 1000, now).error(), Errc::access_denied) << "one try only";
  auto b = t.issue(1000, 3, now).value();
  EXPECT_EQ(t.redeem(b, 4, 1000, now).error(), Errc::access_denied) << "another group";
  EXPECT_EQ(t.redeem(12345, 3, 1000, now).error(), Errc::access_denied) << "never issued";
}

TEST(FastTickets, ExpireAfterTheirLifetime) {
  FastTickets t(16, 10s);
  auto now = Clock::now();
  auto a = t.issue(0, 1, now).value();
  auto b = t.issue(0, 1, now).value();
  EXPECT_TRUE(t.redeem(a, 1, 0, now + 9s).has_value());
  EXPECT_EQ(t.redeem(b, 1, 0, now + 10s).error(), Errc::access_denied);
}

TEST(FastTickets, TableIsBoundedAndFreedByExpiry) {
  FastTickets t(4, 10s);
  auto now = Clock::now();
  std::set<std::uint64_t> seen;
  for (int i = 0; i < 4; ++i) seen.insert(t.issue(0, 1, now).value());
  EXPECT_EQ(seen.size(), 4u) << "distinct tokens";
  EXPECT_EQ(t.issue(0, 1, now).error(), Errc::try_again) << "full";
  EXPECT_EQ(t.outstanding(), 4u);
  EXPECT_TRUE(t.issue(0, 1, now + 11s).has_value()) << "expired ones make room";
  EXPECT_EQ(t.outstanding(), 1u);
}

TEST(FastTickets, OneUidCannotTakeTheTable) {
  FastTickets t(16, 10s, 4);
  auto now = Clock::now();
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(t.issue(1000, 1, now).has_value());
  EXPECT_EQ(t.issue(1000, 2, now).error(), Errc::try_again) << "uid 1000 is at its cap";
  EXPECT_EQ(t.outstanding(1000), 4u);
  auto other = t.issue(1001, 1, now);
  ASSERT_TRUE(other.has_value()) << "another uid is not refused";
  EXPECT_TRUE(t.redeem(*other, 1, 1001, now).has_value());
  EXPECT_EQ(t.outstanding(1001), 0u);
  // A redeemed or expired token frees its uid's slot.
  auto a = t.issue(1002, 1, now).value();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(t.issue(1002, 1, now).has_value());
  EXPECT_EQ(t.issue(1002, 1, now).error(), Errc::try_again);
  EXPECT_TRUE(t.redeem(a, 1, 1002, now).has_value());
  EXPECT_TRUE(t.issue(1002, 1, now).has_value()) << "redeemed: room again";
  EXPECT_TRUE(t.issue(1000, 1, now + 11s).has_value()) << "expired: room again";
  EXPECT_EQ(t.outstanding(1000), 1u);
  // A token burnt by the wrong uid frees its owner's slot too.
  auto b = t.issue(1003, 1, now).value();
  EXPECT_EQ(t.redeem(b, 1, 1004, now).error(), Errc::access_denied);
  EXPECT_EQ(t.outstanding(1003), 0u);
}

}  // namespace
}  // namespace synchmess
