// MasterRequests through the reply seam, with a Transport that records
// what it was asked and a fake caller context (uid) from the test sink.
#include "requests/master_requests.h"

#include <fcntl.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "requests/test_replies.h"
#include "synchmess_interface.h"

namespace synchmess {
namespace {

using testing::RecordingReplies;
using Kind = RecordingReplies::Kind;

class FakeTransport final : public Transport {
 public:
  Result<void> start(std::string&) override { return {}; }
  void ensure_group(unsigned d, Done done) override {
    ensured.push_back(d);
    if (defer)
      pending.push_back(std::move(done));
    else
      done(outcome);
  }
  std::string group_path(unsigned d) const override { return "/dev/synch/synchmess" + std::to_string(d); }
  void begin_stop() override {}
  void finish_stop() override {}
  const char* name() const noexcept override { return "fake"; }

  std::vector<unsigned> ensured;
  Result<void> outcome;
  bool defer = false;
  std::vector<Done> pending;
};

class MasterRequestsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    registry.shutdown();
    EXPECT_EQ(replies.violations(), 0);
  }
  // INSTALL as request `id`; the finish step records the path and answers `id`.
  void install(std::uintptr_t id, unsigned d) {
    master.install(replies.make(id), d, [this, id](Reply r, std::string path) {
      paths.push_back(path);
      r.ioctl(static_cast<int>(id));
    });
  }
  void set_params(std::uintptr_t id, std::uint32_t uid, synchmess_params p) {
    fuse_ctx ctx{};
    ctx.uid = uid;
    replies.set_context(ctx);
    master.ioctl(replies.make(id), decode_ioctl(IOCTL_SET_PARAMS), std::as_bytes(std::span(&p, 1)));
  }
  bool answered(std::uintptr_t id, Kind kind, long value) {
    auto a = replies.answer_to(id);
    return a && a->kind == kind && a->value == value;
  }

  RecordingReplies replies;
  boost::asio::io_context io;
  Limits limits;
  Registry registry{io.get_executor(), limits, {.max_groups = 4}};
  FakeTransport transport;
  MasterRequests master{registry, limits, transport};
  std::vector<std::string> paths;
};

TEST_F(MasterRequestsTest, OpenIsReadOnly) {
  fuse_file_info ro{}, wo{}, rw{};
  ro.flags = O_RDONLY;
  wo.flags = O_WRONLY;
  rw.flags = O_RDWR;
  master.open(replies.make(1), ro);
  master.open(replies.make(2), wo);
  master.open(replies.make(3), rw);
  auto a = replies.answer_to(1);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->kind, Kind::open);
  EXPECT_TRUE(a->fi.direct_io);
  EXPECT_TRUE(answered(2, Kind::error, EPERM));
  EXPECT_TRUE(answered(3, Kind::error, EPERM));
}

TEST_F(MasterRequestsTest, InstallRejectsBadDescriptors) {
  install(1, 0);
  install(2, 5);
  install(3, UINT_MAX);
  for (std::uintptr_t id = 1; id <= 3; ++id) EXPECT_TRUE(answered(id, Kind::error, EBADF)) << id;
  EXPECT_TRUE(transport.ensured.empty());
  EXPECT_TRUE(paths.empty());
  EXPECT_EQ(registry.find(0), nullptr);
}

TEST_F(MasterRequestsTest, InstallIsIdempotent) {
  install(1, 4);
  ASSERT_TRUE(answered(1, Kind::ioctl, 1));
  Group* g = registry.find(4);
  ASSERT_NE(g, nullptr);
  install(2, 4);
  EXPECT_TRUE(answered(2, Kind::ioctl, 2));
  EXPECT_EQ(registry.find(4), g);  // the same group, not a new one
  EXPECT_EQ(transport.ensured, (std::vector<unsigned>{4, 4}));
  EXPECT_EQ(paths, (std::vector<std::string>{"/dev/synch/synchmess4", "/dev/synch/synchmess4"}));
}

TEST_F(MasterRequestsTest, InstallAnswersOnceTheDeviceExists) {
  transport.defer = true;
  install(1, 2);
  EXPECT_TRUE(replies.live(1));  // waits for the device
  install(2, 3);
  ASSERT_EQ(transport.pending.size(), 2u);
  transport.pending[0]({});
  EXPECT_TRUE(answered(1, Kind::ioctl, 1));
  transport.pending[1](fail(Errc::device_failed));
  EXPECT_TRUE(answered(2, Kind::error, EIO));
  EXPECT_EQ(paths.size(), 1u);
}

TEST_F(MasterRequestsTest, InstallAfterShutdownFails) {
  registry.shutdown();
  install(1, 1);
  EXPECT_TRUE(answered(1, Kind::error, ESHUTDOWN));
}

TEST_F(MasterRequestsTest, GetParams) {
  limits.max_message_size = 100;
  limits.max_storage_size = 2000;
  master.ioctl(replies.make(1), decode_ioctl(IOCTL_GET_PARAMS), {});
  auto a = replies.answer_to(1);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->kind, Kind::ioctl);
  ASSERT_EQ(a->bytes.size(), sizeof(synchmess_params));
  synchmess_params p;
  std::memcpy(&p, a->bytes.data(), sizeof p);
  EXPECT_EQ(p.max_message_size, 100u);
  EXPECT_EQ(p.max_storage_size, 2000u);
}

TEST_F(MasterRequestsTest, SetParamsIsForRootOnly) {
  set_params(1, 1000, {100, 2000});
  EXPECT_TRUE(answered(1, Kind::error, EPERM));
  EXPECT_EQ(limits.max_message_size.load(), Limits::default_max_message_size);
  EXPECT_EQ(limits.max_storage_size.load(), Limits::default_max_storage_size);
  set_params(2, 0, {100, 2000});
  EXPECT_TRUE(answered(2, Kind::ioctl, 0));
  EXPECT_EQ(limits.max_message_size.load(), 100u);
  EXPECT_EQ(limits.max_storage_size.load(), 2000u);
}

TEST_F(MasterRequestsTest, SetParamsKeepsZeroFieldsAndChecksRanges) {
  set_params(1, 0, {0, 5000});
  EXPECT_TRUE(answered(1, Kind::ioctl, 0));
  EXPECT_EQ(limits.max_message_size.load(), Limits::default_max_message_size);
  EXPECT_EQ(limits.max_storage_size.load(), 5000u);
  set_params(2, 0, {Limits::largest_max_message_size + 1, 0});
  EXPECT_TRUE(answered(2, Kind::error, EINVAL));
  set_params(3, 0, {0, Limits::largest_max_storage_size + 1});
  EXPECT_TRUE(answered(3, Kind::error, EINVAL));
  EXPECT_EQ(limits.max_message_size.load(), Limits::default_max_message_size);
  EXPECT_EQ(limits.max_storage_size.load(), 5000u);
  set_params(4, 0, {Limits::largest_max_message_size, Limits::largest_max_storage_size});
  EXPECT_TRUE(answered(4, Kind::ioctl, 0));
  EXPECT_EQ(limits.max_message_size.load(), Limits::largest_max_message_size);

  fuse_ctx root{};
  replies.set_context(root);
  unsigned short_arg = 1;
  master.ioctl(replies.make(5), decode_ioctl(IOCTL_SET_PARAMS), std::as_bytes(std::span(&short_arg, 1)));
  EXPECT_TRUE(answered(5, Kind::error, EFAULT));
}

TEST_F(MasterRequestsTest, GroupIoctlsFailEperm) {
  master.ioctl(replies.make(1), decode_ioctl(IOCTL_SLEEP), {});
  master.ioctl(replies.make(2), decode_ioctl(0x4242), {});
  EXPECT_TRUE(answered(1, Kind::error, EPERM));
  EXPECT_TRUE(answered(2, Kind::error, EPERM));
}

TEST(CheckLimits, Bounds) {
  EXPECT_TRUE(check_limits(1, 1));
  EXPECT_TRUE(check_limits(Limits::largest_max_message_size, Limits::largest_max_storage_size));
  EXPECT_EQ(check_limits(0, 1).error(), Errc::invalid_argument);
  EXPECT_EQ(check_limits(Limits::largest_max_message_size + 1, 1).error(), Errc::invalid_argument);
  EXPECT_EQ(check_limits(1, 0).error(), Errc::invalid_argument);
  EXPECT_EQ(check_limits(1, (Limits::largest_max_storage_size) + 1).error(), Errc::invalid_argument);
}

}  // namespace
}  // namespace synchmess
