// The statistics ioctls through MasterRequests and the reply seam: what the
// structs say after writes, reads, delays, sleepers and opens made through
// GroupRequests, the walk over installed groups, and every errno.
#include "requests/stats_requests.h"

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

#include <gtest/gtest.h>

#include "requests/master_requests.h"
#include "requests/test_replies.h"
#include "synchmess_stats.h"

namespace synchmess {
namespace {

using testing::RecordingPollHandles;
using testing::RecordingReplies;
using Kind = RecordingReplies::Kind;

class NamedTransport final : public Transport {
 public:
  explicit NamedTransport(const char* name) : name_(name) {}
  Result<void> start(std::string&) override { return {}; }
  void ensure_group(unsigned, Done done) override { done({}); }
  std::string group_path(unsigned d) const override { return "/x/synchmess" + std::to_string(d); }
  void begin_stop() override {}
  void finish_stop() override {}
  const char* name() const noexcept override { return name_; }

 private:
  const char* name_;
};

std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s)); }

class StatsRequestsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    registry.shutdown();
    io.restart();
    io.poll();
    EXPECT_EQ(replies.violations(), 0);
  }
  synchmess_stats daemon(std::uintptr_t id) {
    master.ioctl(replies.make(id), decode_ioctl(IOCTL_GET_STATS), {});
    synchmess_stats s{};
    auto a = replies.answer_to(id);
    EXPECT_TRUE(a && a->kind == Kind::ioctl && a->value == 0 && a->bytes.size() == sizeof s);
    if (a && a->bytes.size() == sizeof s) std::memcpy(&s, a->bytes.data(), sizeof s);
    return s;
  }
  // IOCTL_GET_GROUP_STATS as request `id`: the errno (0 on success) and the struct.
  int group(std::uintptr_t id, unsigned descriptor, unsigned flags, synchmess_group_stats& out) {
    synchmess_group_stats in{};
    in.descriptor = descriptor;
    in.flags = flags;
    master.ioctl(replies.make(id), decode_ioctl(IOCTL_GET_GROUP_STATS), std::as_bytes(std::span(&in, 1)));
    auto a = replies.answer_to(id);
    if (!a) return -1;
    if (a->kind == Kind::error) return static_cast<int>(a->value);
    EXPECT_EQ(a->kind, Kind::ioctl);
    EXPECT_EQ(a->value, 0);
    EXPECT_EQ(a->bytes.size(), sizeof out);
    if (a->bytes.size() == sizeof out) std::memcpy(&out, a->bytes.data(), sizeof out);
    return 0;
  }
  Group& install(unsigned d) { return *registry.install(d).value().group; }

  RecordingReplies replies;
  RecordingPollHandles handles;
  boost::asio::io_context io;
  Limits limits;
  GroupRequests groups{io, 8, handles};
  Registry registry{io.get_executor(), limits, {.max_groups = 8, .listener = &groups}};
  NamedTransport transport{"fuse"};
  MasterRequests master{registry, limits, transport};
};

TEST_F(StatsRequestsTest, DaemonStats) {
  limits.max_message_size = 100;
  limits.max_storage_size = 5000;
  synchmess_stats s = daemon(1);
  EXPECT_EQ(s.version, static_cast<unsigned>(SYNCHMESS_STATS_VERSION));
  EXPECT_EQ(s.transport, static_cast<unsigned>(SYNCHMESS_TRANSPORT_FUSE));
  EXPECT_EQ(s.max_message_size, 100u);
  EXPECT_EQ(s.max_storage_size, 5000u);
  EXPECT_EQ(s.max_groups, 8u);
  EXPECT_EQ(s.groups, 0u);
  EXPECT_EQ(s.reserved[0] | s.reserved[1] | s.reserved[2], 0u);
  install(2);
  install(7);
  install(2);
  EXPECT_EQ(daemon(2).groups, 2u);
  // The uptime grows (bounded wait, no fixed sleep).
  const auto first = s.uptime_ms;
  bool grew = false;
  for (std::uintptr_t id = 3; id < 20003 && !grew; ++id) {
    grew = daemon(id).uptime_ms > first;
    if (!grew) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_TRUE(grew);
}

TEST(StatsTransportNames, MapToTheirNumbers) {
  boost::asio::io_context io;
  Limits limits;
  Registry registry{io.get_executor(), limits, {.max_groups = 1}};
  EXPECT_EQ(daemon_stats(registry, limits, "cuse", {}).transport, static_cast<unsigned>(SYNCHMESS_TRANSPORT_CUSE));
  EXPECT_EQ(daemon_stats(registry, limits, "fuse", {}).transport, static_cast<unsigned>(SYNCHMESS_TRANSPORT_FUSE));
  EXPECT_EQ(daemon_stats(registry, limits, "fake", {}).transport, 0u);
  EXPECT_EQ(daemon_stats(registry, limits, "fuse", std::chrono::milliseconds(1234)).uptime_ms, 1234u);
  registry.shutdown();
}

TEST_F(StatsRequestsTest, GroupStatsFollowTheRequests) {
  Group& g = install(3);
  fuse_file_info a{}, b{};
  groups.open(g, replies.make(1), a);
  groups.open(g, replies.make(2), b);
  groups.release(g, replies.make(3), b);
  groups.write(g, replies.make(4), bytes("abc"));
  groups.write(g, replies.make(5), bytes("defgh"));
  groups.write(g, replies.make(6), bytes("ijklmno"));
  groups.read(g, replies.make(7), 100);
  synchmess_group_stats s{};
  ASSERT_EQ(group(8, 3, 0, s), 0);
  EXPECT_EQ(s.descriptor, 3u);
  EXPECT_EQ(s.flags, 0u);
  EXPECT_EQ(s.version, static_cast<unsigned>(SYNCHMESS_STATS_VERSION));
  EXPECT_EQ(s.open_files, 1u);
  EXPECT_EQ(s.queued_messages, 2u);
  EXPECT_EQ(s.queued_bytes, 12u);
  EXPECT_EQ(s.storage_bytes, 12u + 2 * SYNCHMESS_MESSAGE_OVERHEAD);
  EXPECT_EQ(s.sent, 3u);
  EXPECT_EQ(s.received, 1u);
  EXPECT_EQ(s.delayed_messages, 0u);
  EXPECT_EQ(s.sleepers, 0u);

  unsigned delay = 600000;
  groups.ioctl(g, replies.make(9), decode_ioctl(IOCTL_SET_SEND_DELAY), std::as_bytes(std::span(&delay, 1)));
  groups.write(g, replies.make(10), bytes("1234"));
  groups.ioctl(g, replies.make(11), decode_ioctl(IOCTL_SLEEP), {});
  ASSERT_EQ(group(12, 3, 0, s), 0);
  EXPECT_EQ(s.send_delay_ms, 600000u);
  EXPECT_EQ(s.delayed_messages, 1u);
  EXPECT_EQ(s.delayed_bytes, 4u);
  EXPECT_EQ(s.queued_messages, 2u);
  EXPECT_EQ(s.sleepers, 1u);
  EXPECT_EQ(s.sent, 4u);

  groups.ioctl(g, replies.make(13), decode_ioctl(IOCTL_AWAKE), {});
  groups.ioctl(g, replies.make(14), decode_ioctl(IOCTL_REVOKE_DELAYED_MESSAGES), {});
  groups.release(g, replies.make(15), a);
  ASSERT_EQ(group(16, 3, 0, s), 0);
  EXPECT_EQ(s.sleepers, 0u);
  EXPECT_EQ(s.delayed_messages, 0u);
  EXPECT_EQ(s.revoked, 1u);
  EXPECT_EQ(s.open_files, 0u);
  EXPECT_EQ(s.reserved[0] | s.reserved[1] | s.reserved[2] | s.reserved[3], 0u);
}

TEST_F(StatsRequestsTest, GroupStatsErrors) {
  install(4);
  synchmess_group_stats s{};
  EXPECT_EQ(group(1, 0, 0, s), EBADF);
  EXPECT_EQ(group(2, 9, 0, s), EBADF);
  EXPECT_EQ(group(3, UINT_MAX, 0, s), EBADF);
  EXPECT_EQ(group(4, 5, 0, s), ENODEV);  // in range, not installed
  EXPECT_EQ(group(5, 4, 2, s), EINVAL);  // unknown flag
  EXPECT_EQ(group(6, 4, SYNCHMESS_GROUP_STATS_NEXT | 4, s), EINVAL);
  unsigned short_arg = 4;
  master.ioctl(replies.make(7), decode_ioctl(IOCTL_GET_GROUP_STATS), std::as_bytes(std::span(&short_arg, 1)));
  auto a = replies.answer_to(7);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->kind, Kind::error);
  EXPECT_EQ(a->value, EFAULT);
  EXPECT_EQ(group(8, 4, 0, s), 0);
}

TEST_F(StatsRequestsTest, NextWalksTheInstalledGroupsInOrder) {
  install(7);
  install(2);
  install(5);
  synchmess_group_stats s{};
  std::vector<unsigned> seen;
  std::uintptr_t id = 1;
  for (unsigned from = 1;; from = s.descriptor + 1) {
    int err = group(id++, from, SYNCHMESS_GROUP_STATS_NEXT, s);
    if (err == ENODEV) break;
    ASSERT_EQ(err, 0);
    EXPECT_EQ(s.flags, SYNCHMESS_GROUP_STATS_NEXT);
    seen.push_back(s.descriptor);
    ASSERT_LT(seen.size(), 10u);
  }
  EXPECT_EQ(seen, (std::vector<unsigned>{2, 5, 7}));
  ASSERT_EQ(group(id++, 0, SYNCHMESS_GROUP_STATS_NEXT, s), 0);
  EXPECT_EQ(s.descriptor, 2u);
  EXPECT_EQ(group(id++, UINT_MAX, SYNCHMESS_GROUP_STATS_NEXT, s), ENODEV);
}

TEST_F(StatsRequestsTest, StatisticsNumbersOnAGroupFailEperm) {
  Group& g = install(1);
  synchmess_group_stats in{};
  in.descriptor = 1;
  groups.ioctl(g, replies.make(1), decode_ioctl(IOCTL_GET_STATS), {});
  groups.ioctl(g, replies.make(2), decode_ioctl(IOCTL_GET_GROUP_STATS), std::as_bytes(std::span(&in, 1)));
  for (std::uintptr_t id = 1; id <= 2; ++id) {
    auto a = replies.answer_to(id);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->kind, Kind::error);
    EXPECT_EQ(a->value, EPERM);
  }
}

}  // namespace
}  // namespace synchmess
