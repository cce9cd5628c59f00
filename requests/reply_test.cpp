// The reply handle's duty to answer exactly once, observed through a
// recording sink; the libfuse sink itself is exercised by the integration
// suites against real devices.
#include "requests/reply.h"

#include <cerrno>

#include <gtest/gtest.h>

#include "requests/test_replies.h"

namespace synchmess {
namespace {

using testing::RecordingReplies;
using Kind = RecordingReplies::Kind;

TEST(Reply, EmptyHandleAnswersNothing) {
  Reply r;
  EXPECT_FALSE(r);
  r.error(5);  // no request: a no-op, no crash
  r.ok();
  EXPECT_FALSE(r);
}

TEST(Reply, AnswersOnceThenIsEmpty) {
  RecordingReplies sink;
  Reply r = sink.make(1);
  EXPECT_TRUE(r);
  r.written(7);
  EXPECT_FALSE(r);
  r.error(EPERM);  // a second answer is a no-op
  auto all = sink.answers();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].kind, Kind::written);
  EXPECT_EQ(all[0].value, 7);
  EXPECT_EQ(sink.violations(), 0);
}

TEST(Reply, DroppedUnansweredRepliesEio) {
  RecordingReplies sink;
  { Reply r = sink.make(1); }
  auto a = sink.answer_to(1);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->kind, Kind::error);
  EXPECT_EQ(a->value, EIO);
  EXPECT_EQ(sink.violations(), 0);
}

TEST(Reply, MovingTransfersTheDuty) {
  RecordingReplies sink;
  Reply a = sink.make(1);
  Reply b(std::move(a));
  EXPECT_FALSE(a);
  EXPECT_TRUE(b);
  b.ok();
  Reply c = sink.make(2);
  c = sink.make(3);  // the request c held is dropped: EIO
  EXPECT_TRUE(c);
  c.ioctl(4);
  ASSERT_TRUE(sink.answer_to(1));
  EXPECT_EQ(sink.answer_to(1)->value, 0);
  ASSERT_TRUE(sink.answer_to(2));
  EXPECT_EQ(sink.answer_to(2)->value, EIO);
  ASSERT_TRUE(sink.answer_to(3));
  EXPECT_EQ(sink.answer_to(3)->kind, Kind::ioctl);
  EXPECT_EQ(sink.answers().size(), 3u);
  EXPECT_EQ(sink.violations(), 0);
}

TEST(Reply, ContextAndInterruptGoThroughTheSink) {
  RecordingReplies sink;
  fuse_ctx ctx{};
  ctx.uid = 42;
  ctx.pid = 4242;
  sink.set_context(ctx);
  Reply r = sink.make(1);
  EXPECT_EQ(r.context()->uid, 42u);
  EXPECT_EQ(r.context()->pid, 4242);
  int fired = 0;
  r.on_interrupt([](fuse_req_t, void* n) { ++*static_cast<int*>(n); }, &fired);
  sink.interrupt(1);
  EXPECT_EQ(fired, 1);
  r.error(EINTR);
  sink.interrupt(1);  // answered: the callback is gone
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(sink.violations(), 0);
}

}  // namespace
}  // namespace synchmess
