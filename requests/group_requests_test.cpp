// GroupRequests through the reply seam: every answer is recorded by a
// RecordingReplies, interrupts are fired by the test, poll handles are
// fake ids recorded by a RecordingPollHandles.  The io_context that runs
// posted interrupt cancels is run by the test (poll()), so most tests are
// single-threaded and deterministic; the last one is a threaded stress for
// TSan.
#include "requests/group_requests.h"

#include <poll.h>
#include <sys/mman.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <gtest/gtest.h>

#include "requests/test_replies.h"
#include "ring/shm_ring.h"
#include "ring/shm_ring_testing.h"
#include "synchmess_fast.h"
#include "synchmess_interface.h"

namespace synchmess {
namespace {

using testing::RecordingPollHandles;
using testing::RecordingReplies;
using Kind = RecordingReplies::Kind;

constexpr unsigned readable = POLLIN | POLLRDNORM;
constexpr unsigned writable = POLLOUT | POLLWRNORM;

std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s)); }
std::string text(const std::vector<std::byte>& b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

class GroupRequestsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    group.shutdown();
    run();
    EXPECT_EQ(replies.violations(), 0);
    EXPECT_EQ(handles.violations(), 0);
  }
  // Runs what was posted (the cancels of interrupted sleepers).
  void run() {
    io.restart();
    io.poll();
  }
  void ioctl(std::uintptr_t id, std::uint32_t cmd, std::span<const std::byte> in = {}) {
    groups.ioctl(group, replies.make(id), decode_ioctl(cmd), in);
  }
  // AWAKE as request `id`: its result (-1 if it was not answered so).
  long awake(std::uintptr_t id) {
    ioctl(id, IOCTL_AWAKE);
    auto a = replies.answer_to(id);
    return a && a->kind == Kind::ioctl ? a->value : -1;
  }
  fuse_file_info file(std::uint64_t fh) {
    fuse_file_info fi{};
    fi.fh = fh;
    return fi;
  }
  // The group's segment mapped as a client maps it (unmapped at the end).
  struct Mapped {
    void* mem = MAP_FAILED;
    std::size_t bytes = 0;
    shm_ring ring{};
    ~Mapped() {
      if (mem != MAP_FAILED) ::munmap(mem, bytes);
    }
  };
  void map_ring(Mapped& m) {
    auto seg = group.fast_segment().value();
    m.bytes = seg.bytes;
    m.mem = ::mmap(nullptr, seg.bytes, PROT_READ | PROT_WRITE, MAP_SHARED, seg.fd, 0);
    ASSERT_NE(m.mem, MAP_FAILED);
    ASSERT_EQ(shm_ring_attach(&m.ring, m.mem, seg.bytes), 0);
  }
  // The sweep declares the stuck writer (named in word1, gone) dead.
  void repair(Mapped& m) {
    shm_ring_sweep_state sw{};
    unsigned fixed = 0;
    auto never = [](std::uint32_t, void*) { return 0; };
    ASSERT_EQ(shm_ring_sweep(&m.ring, &sw, 0, 10, 0, never, nullptr, &fixed), SHM_RING_OK);
    ASSERT_EQ(shm_ring_sweep(&m.ring, &sw, 10, 10, 0, never, nullptr, &fixed), SHM_RING_OK);
    ASSERT_EQ(fixed, 1u);
  }

  bool answered(std::uintptr_t id, Kind kind, long value) {
    auto a = replies.answer_to(id);
    return a && a->kind == kind && a->value == value;
  }

  RecordingReplies replies;
  RecordingPollHandles handles;
  boost::asio::io_context io;
  Limits limits;
  GroupRequests groups{io, 8, handles};
  Group group{io.get_executor(), limits, {.descriptor = 3, .listener = &groups}};
};

TEST_F(GroupRequestsTest, OpenGivesEachFileItsOwnIdAndDirectIo) {
  fuse_file_info a{}, b{};
  groups.open(group, replies.make(1), a);
  groups.open(group, replies.make(2), b);
  EXPECT_NE(a.fh, b.fh);
  auto ra = replies.answer_to(1);
  ASSERT_TRUE(ra);
  EXPECT_EQ(ra->kind, Kind::open);
  EXPECT_EQ(ra->fi.fh, a.fh);
  EXPECT_TRUE(ra->fi.direct_io);
  EXPECT_TRUE(ra->fi.nonseekable);
}

TEST_F(GroupRequestsTest, WriteThenReadWholeMessagesInOrder) {
  groups.write(group, replies.make(1), bytes("hello"));
  groups.write(group, replies.make(2), bytes("world!"));
  EXPECT_TRUE(answered(1, Kind::written, 5));
  EXPECT_TRUE(answered(2, Kind::written, 6));
  groups.read(group, replies.make(3), 100);
  groups.read(group, replies.make(4), 2);  // short buffer: the rest is consumed too
  groups.read(group, replies.make(5), 100);
  ASSERT_TRUE(replies.answer_to(3));
  EXPECT_EQ(text(replies.answer_to(3)->bytes), "hello");
  ASSERT_TRUE(replies.answer_to(4));
  EXPECT_EQ(text(replies.answer_to(4)->bytes), "wo");
  EXPECT_TRUE(answered(5, Kind::data, 0));  // empty group: 0 bytes
}

TEST_F(GroupRequestsTest, WriteTooBigFailsEperm) {
  limits.max_message_size = 4;
  groups.write(group, replies.make(1), bytes("12345"));
  EXPECT_TRUE(answered(1, Kind::error, EPERM));
  groups.write(group, replies.make(2), bytes("1234"));
  EXPECT_TRUE(answered(2, Kind::written, 4));
}

TEST_F(GroupRequestsTest, FlushAndDelayIoctls) {
  unsigned ms = 60000;
  ioctl(1, IOCTL_SET_SEND_DELAY, std::as_bytes(std::span(&ms, 1)));
  EXPECT_TRUE(answered(1, Kind::ioctl, 0));
  groups.write(group, replies.make(2), bytes("late"));
  EXPECT_TRUE(answered(2, Kind::written, 4));
  groups.read(group, replies.make(3), 100);
  EXPECT_TRUE(answered(3, Kind::data, 0));  // still delayed
  groups.flush(group, replies.make(4));     // fsync on FUSE
  EXPECT_TRUE(answered(4, Kind::error, 0));
  groups.read(group, replies.make(5), 100);
  ASSERT_TRUE(replies.answer_to(5));
  EXPECT_EQ(text(replies.answer_to(5)->bytes), "late");

  groups.write(group, replies.make(6), bytes("a"));
  ioctl(7, IOCTL_REVOKE_DELAYED_MESSAGES);
  EXPECT_TRUE(answered(7, Kind::ioctl, 0));
  ioctl(8, IOCTL_FLUSH_DELAYED_MESSAGES);
  EXPECT_TRUE(answered(8, Kind::ioctl, 0));
  groups.read(group, replies.make(9), 100);
  EXPECT_TRUE(answered(9, Kind::data, 0));  // revoked, nothing to flush

  groups.write(group, replies.make(10), bytes("b"));
  ioctl(11, IOCTL_FLUSH_DELAYED_MESSAGES);
  groups.read(group, replies.make(12), 100);
  EXPECT_TRUE(answered(12, Kind::data, 1));
}

TEST_F(GroupRequestsTest, BadIoctlsFail) {
  ioctl(1, IOCTL_SET_SEND_DELAY);  // no argument bytes
  EXPECT_TRUE(answered(1, Kind::error, EFAULT));
  ioctl(2, IOCTL_INSTALL_GROUP);  // master only
  EXPECT_TRUE(answered(2, Kind::error, EPERM));
  ioctl(3, IOCTL_SET_PARAMS);
  EXPECT_TRUE(answered(3, Kind::error, EPERM));
  ioctl(4, 0x1234);
  EXPECT_TRUE(answered(4, Kind::error, EPERM));
}

TEST_F(GroupRequestsTest, SleepersAreAnsweredByAwakeWhichCountsThem) {
  for (std::uintptr_t id = 1; id <= 3; ++id) ioctl(id, IOCTL_SLEEP);
  run();
  EXPECT_TRUE(replies.answers().empty());
  EXPECT_EQ(awake(10), 3);
  for (std::uintptr_t id = 1; id <= 3; ++id) EXPECT_TRUE(answered(id, Kind::ioctl, 0)) << id;
  EXPECT_EQ(awake(11), 0);
  // An interrupt after the answer finds nothing (the id is free again).
  replies.interrupt(2);
  run();
  EXPECT_EQ(replies.answers_to(2).size(), 1u);
  ioctl(2, IOCTL_SLEEP);  // the id reused
  EXPECT_EQ(awake(12), 1);
  EXPECT_EQ(replies.answers_to(2).size(), 2u);
}

TEST_F(GroupRequestsTest, SleepInterruptedBeforeItReachedTheBarrier) {
  Reply r = replies.make(1);
  replies.interrupt(1);  // registration runs the callback at once (libfuse does)
  groups.ioctl(group, std::move(r), decode_ioctl(IOCTL_SLEEP), {});
  run();
  EXPECT_TRUE(answered(1, Kind::error, EINTR));
  ioctl(2, IOCTL_SLEEP);
  EXPECT_EQ(awake(10), 1);  // the interrupted sleeper is not counted
  EXPECT_TRUE(answered(2, Kind::ioctl, 0));
}

TEST_F(GroupRequestsTest, SleepInterruptedBeforeItsTicketWasStored) {
  bool fired = false;
  groups.set_sleep_window_hook([&] {
    if (fired) return;
    fired = true;
    replies.interrupt(1);  // in the barrier, but sleep() has no ticket yet
  });
  ioctl(1, IOCTL_SLEEP);
  run();
  ASSERT_TRUE(fired);
  EXPECT_TRUE(answered(1, Kind::error, EINTR));
  EXPECT_EQ(awake(10), 0);
}

TEST_F(GroupRequestsTest, SleepInterruptedInTheBarrier) {
  ioctl(1, IOCTL_SLEEP);
  ioctl(2, IOCTL_SLEEP);
  replies.interrupt(1);
  EXPECT_TRUE(replies.live(1));  // the callback only posts; the owner answers
  run();
  EXPECT_TRUE(answered(1, Kind::error, EINTR));
  EXPECT_EQ(awake(10), 1);
  EXPECT_TRUE(answered(2, Kind::ioctl, 0));
}

// The race of sleep()'s comments, made to happen: AWAKE completes the
// sleeper while sleep() is between Group::sleep and storing its ticket, and
// a new SLEEP reuses the request id at once.  The old sleep() must leave
// the new sleeper alone, and interrupting the id must cancel the new one.
TEST_F(GroupRequestsTest, InterruptCancelsTheNewSleeperOfARecycledId) {
  int windows = 0;
  long woken = -1;
  groups.set_sleep_window_hook([&] {
    if (windows++ != 0) return;
    woken = awake(100);           // completes sleeper #1, frees id 1
    EXPECT_FALSE(replies.live(1));
    ioctl(1, IOCTL_SLEEP);        // sleeper #2 under the same id
  });
  ioctl(1, IOCTL_SLEEP);
  EXPECT_EQ(windows, 2);
  EXPECT_EQ(woken, 1);
  ASSERT_TRUE(replies.live(1));   // sleeper #2 waits
  replies.interrupt(1);
  run();
  auto answers = replies.answers_to(1);
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[0].kind, Kind::ioctl);
  EXPECT_EQ(answers[0].value, 0);
  EXPECT_EQ(answers[1].kind, Kind::error);
  EXPECT_EQ(answers[1].value, EINTR);
  EXPECT_EQ(awake(101), 0);
}

TEST_F(GroupRequestsTest, OnePollHandleKeptPerOpenFile) {
  auto fa = file(1), fb = file(2);
  groups.poll(group, replies.make(1), fa, handles.make(11));
  EXPECT_TRUE(answered(1, Kind::poll, writable));
  EXPECT_EQ(groups.poll_handles(), 1u);
  groups.poll(group, replies.make(2), fa, handles.make(12));  // replaces 11
  EXPECT_TRUE(handles.destroyed(11));
  EXPECT_FALSE(handles.destroyed(12));
  EXPECT_EQ(groups.poll_handles(), 1u);
  groups.poll(group, replies.make(3), fb, handles.make(13));
  EXPECT_EQ(groups.poll_handles(), 2u);

  groups.release(group, replies.make(4), fa);
  EXPECT_TRUE(answered(4, Kind::error, 0));
  EXPECT_TRUE(handles.destroyed(12));
  EXPECT_EQ(groups.poll_handles(), 1u);
  EXPECT_TRUE(handles.notified().empty());

  groups.write(group, replies.make(5), bytes("x"));  // readable: 13 is notified
  EXPECT_EQ(handles.notified(), std::vector<fuse_pollhandle*>{testing::fake_ph(13)});
  EXPECT_TRUE(handles.destroyed(13));
  EXPECT_EQ(groups.poll_handles(), 0u);
  EXPECT_EQ(handles.live(), 0u);
}

TEST_F(GroupRequestsTest, PollOnAReadableGroupKeepsNoHandle) {
  groups.write(group, replies.make(1), bytes("x"));
  auto fa = file(1);
  groups.poll(group, replies.make(2), fa, handles.make(11));
  EXPECT_TRUE(answered(2, Kind::poll, writable | readable));
  EXPECT_TRUE(handles.destroyed(11));
  EXPECT_EQ(groups.poll_handles(), 0u);
  groups.poll(group, replies.make(3), fa, nullptr);  // a poll without a handle
  EXPECT_TRUE(answered(3, Kind::poll, writable | readable));
  EXPECT_TRUE(handles.notified().empty());
}

TEST_F(GroupRequestsTest, ShutdownDestroysEveryHandle) {
  auto fa = file(1), fb = file(2);
  groups.poll(group, replies.make(1), fa, handles.make(11));
  groups.poll(group, replies.make(2), fb, handles.make(12));
  EXPECT_EQ(groups.poll_handles(), 2u);
  groups.shutdown();
  EXPECT_EQ(groups.poll_handles(), 0u);
  EXPECT_EQ(handles.live(), 0u);
  EXPECT_TRUE(handles.notified().empty());
}

// Sleepers, awakers and interrupts on several threads, the io_context on
// two: every request is answered exactly once, and the sum of AWAKE's
// results is the number of sleepers answered 0 (an interrupted sleeper is
// never counted).  Each sleeper thread reuses its ids only once they were
// answered and interrupts only its own ids, as libfuse guarantees.
TEST_F(GroupRequestsTest, StressSleepAwakeInterrupt) {
  auto guard = boost::asio::make_work_guard(io);
  std::vector<std::thread> pool;
  for (int i = 0; i < 2; ++i) pool.emplace_back([this] { io.run(); });

  constexpr int rounds = 300;
  std::atomic<int> sleepers_done{0};
  std::atomic<long> counted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      const std::uintptr_t base = 1000 * (t + 1);
      for (int i = 0; i < rounds; ++i) {
        std::uintptr_t id = base + static_cast<std::uintptr_t>(i % 4);
        if (!replies.wait_answered(id)) break;  // reuse only a free id
        ioctl(id, IOCTL_SLEEP);
        if (i % 3 == 0) replies.interrupt(id);
      }
      sleepers_done++;
    });
  }
  threads.emplace_back([&] {
    std::uintptr_t id = 100000;
    while (sleepers_done.load() < 2) {
      ioctl(id, IOCTL_AWAKE);
      if (auto a = replies.answer_to(id)) counted += a->value;
      ++id;
      std::this_thread::yield();
    }
    ioctl(id, IOCTL_AWAKE);  // the last sleepers
    if (auto a = replies.answer_to(id)) counted += a->value;
  });
  for (auto& t : threads) t.join();
  // The last posted cancels find nothing left; let the pool drain them.
  guard.reset();
  for (auto& t : pool) t.join();

  long slept = 0, intr = 0, total = 0;
  for (const auto& a : replies.answers()) {
    auto id = reinterpret_cast<std::uintptr_t>(a.req);
    if (id >= 100000) continue;
    ++total;
    if (a.kind == Kind::ioctl && a.value == 0) ++slept;
    else if (a.kind == Kind::error && a.value == EINTR) ++intr;
    else ADD_FAILURE() << "unexpected answer to a sleeper";
  }
  EXPECT_EQ(total, 2 * rounds);
  EXPECT_EQ(slept + intr, total);
  EXPECT_EQ(counted.load(), slept);
}

}  // namespace
}  // namespace synchmess

namespace synchmess {
namespace {

// The fast path's ioctls: ENOTTY while off; a ticket for the caller's uid
// that the token table redeems once; the pollers flag while a poll waits;
// FAST_KICK notifies the pollers.
TEST_F(GroupRequestsTest, FastTicketAndKick) {
  ioctl(1, SYNCHMESS_IOCTL_FAST_TICKET);
  EXPECT_TRUE(answered(1, Kind::error, ENOTTY)) << "off unless set_fast";
  FastTickets tickets;
  groups.set_fast(&tickets, "/run/test/fast.sock");
  fuse_ctx ctx{};
  ctx.uid = 1234;
  replies.set_context(ctx);
  ioctl(2, SYNCHMESS_IOCTL_FAST_TICKET);
  auto a = replies.answer_to(2);
  ASSERT_TRUE(a && a->kind == Kind::ioctl && a->value == 0);
  ASSERT_EQ(a->bytes.size(), sizeof(synchmess_fast_ticket));
  synchmess_fast_ticket t;
  std::memcpy(&t, a->bytes.data(), sizeof t);
  EXPECT_EQ(t.group, 3u);
  EXPECT_EQ(t.version, static_cast<unsigned>(SYNCHMESS_FAST_VERSION));
  EXPECT_EQ(t.generation, group.generation());
  EXPECT_EQ(t.segment_bytes, shm_ring_segment_bytes(Group::min_segment_holds));
  EXPECT_STREQ(t.socket_path, "/run/test/fast.sock");
  EXPECT_TRUE(group.fast_shared());
  EXPECT_EQ(tickets.redeem(t.token, 3, 1235, FastTickets::Clock::now()).error(), Errc::access_denied);
  ioctl(3, SYNCHMESS_IOCTL_FAST_TICKET);
  std::memcpy(&t, replies.answer_to(3)->bytes.data(), sizeof t);
  EXPECT_TRUE(tickets.redeem(t.token, 3, 1234, FastTickets::Clock::now()).has_value());

  // A poll waiting sets the flag in the group's ring; the kick notifies it
  // (a fast writer's message is in the ring: here a client's write).
  auto seg = group.fast_segment().value();
  void* mem = ::mmap(nullptr, seg.bytes, PROT_READ | PROT_WRITE, MAP_SHARED, seg.fd, 0);
  ASSERT_NE(mem, MAP_FAILED);
  shm_ring ring{};
  ASSERT_EQ(shm_ring_attach(&ring, mem, seg.bytes), 0);
  EXPECT_FALSE(shm_ring_pollers(&ring));
  fuse_file_info fi = file(7);
  groups.poll(group, replies.make(4), fi, handles.make(21));
  EXPECT_TRUE(answered(4, Kind::poll, writable));
  EXPECT_TRUE(shm_ring_pollers(&ring));
  ASSERT_EQ(shm_ring_write(&ring, "fast", 4, 1024, 1 << 20, 99), SHM_RING_OK);
  EXPECT_TRUE(handles.notified().empty()) << "the daemon did not see the write";
  ioctl(5, SYNCHMESS_IOCTL_FAST_KICK);
  EXPECT_TRUE(answered(5, Kind::ioctl, 0));
  EXPECT_EQ(handles.notified(), std::vector<fuse_pollhandle*>{testing::fake_ph(21)});
  EXPECT_FALSE(shm_ring_pollers(&ring)) << "no poller left";
  groups.read(group, replies.make(6), 100);
  auto r = replies.answer_to(6);
  ASSERT_TRUE(r && r->kind == Kind::data);
  EXPECT_EQ(text(r->bytes), "fast");
  ::munmap(mem, seg.bytes);
}

// A device write that finds the ring's newest reservation stuck (a writer
// stopped between two steps) is parked, not failed, and answered with the
// normal result once the reservation is repaired; over the per-group cap it
// fails ENOMEM at once (nothing queued); shutdown answers the rest ENOMEM.
TEST_F(GroupRequestsTest, WriteBehindAStuckReservationIsParkedUntilTheRepair) {
  Mapped m;
  ASSERT_NO_FATAL_FAILURE(map_ring(m));
  ASSERT_EQ(shm_ring_test_write_until(&m.ring, "lost", 4, 4242, SHM_RING_STOP_WORD0), 0);

  groups.write(group, replies.make(1), bytes("parked"));
  EXPECT_FALSE(replies.answer_to(1)) << "failed or answered at once";
  EXPECT_EQ(groups.parked_writes(), 1u);
  io.restart();
  io.run_for(GroupRequests::park_retry * 5);
  EXPECT_FALSE(replies.answer_to(1)) << "answered while the ring is still busy";

  // The per-group cap: the parked ones and one more, which fails at once.
  for (unsigned i = 1; i < GroupRequests::max_parked_per_group; ++i) groups.write(group, replies.make(10 + i), bytes("more"));
  EXPECT_EQ(groups.parked_writes(), GroupRequests::max_parked_per_group);
  groups.write(group, replies.make(2), bytes("over"));
  EXPECT_TRUE(answered(2, Kind::error, ENOMEM)) << "over the cap";

  ASSERT_NO_FATAL_FAILURE(repair(m));
  io.restart();
  for (int i = 0; i < 200 && groups.parked_writes() > 0; ++i) io.run_for(GroupRequests::park_retry);
  EXPECT_TRUE(answered(1, Kind::written, 6)) << "the parked write did not get its normal result";
  for (unsigned i = 1; i < GroupRequests::max_parked_per_group; ++i) EXPECT_TRUE(answered(10 + i, Kind::written, 4));
  groups.read(group, replies.make(3), 100);
  auto r = replies.answer_to(3);
  ASSERT_TRUE(r && r->kind == Kind::data);
  EXPECT_EQ(text(r->bytes), "parked") << "FIFO: the parked write went first";

  // Busy again, then shutdown: the parked write gets ENOMEM.
  while (group.receive()) {
  }
  ASSERT_EQ(shm_ring_test_write_until(&m.ring, "lost", 4, 4242, SHM_RING_STOP_WORD0), 0);
  groups.write(group, replies.make(4), bytes("stopping"));
  EXPECT_FALSE(replies.answer_to(4));
  groups.shutdown();
  EXPECT_TRUE(answered(4, Kind::error, ENOMEM));
  groups.write(group, replies.make(5), bytes("after"));
  EXPECT_TRUE(answered(5, Kind::error, ENOMEM)) << "parked after shutdown";
}

// A parked write whose caller gets a signal (or is killed: the kernel then
// waits for the answer) is answered EINTR within a retry or two, and its
// message is not queued; the other parked write keeps waiting.
TEST_F(GroupRequestsTest, InterruptedParkedWriteFailsEintrAndQueuesNothing) {
  Mapped m;
  ASSERT_NO_FATAL_FAILURE(map_ring(m));
  ASSERT_EQ(shm_ring_test_write_until(&m.ring, "lost", 4, 4242, SHM_RING_STOP_WORD0), 0);

  groups.write(group, replies.make(1), bytes("signalled"));
  groups.write(group, replies.make(2), bytes("waits"));
  ASSERT_EQ(groups.parked_writes(), 2u);
  replies.interrupt(1);
  io.restart();
  for (int i = 0; i < 200 && groups.parked_writes() > 1; ++i) io.run_for(GroupRequests::park_retry);
  EXPECT_TRUE(answered(1, Kind::error, EINTR)) << "the interrupted parked write";
  EXPECT_FALSE(replies.answer_to(2)) << "the other parked write was answered while the ring is busy";
  EXPECT_EQ(groups.parked_writes(), 1u);

  // The repair: only the write that was not interrupted is queued.
  ASSERT_NO_FATAL_FAILURE(repair(m));
  io.restart();
  for (int i = 0; i < 200 && groups.parked_writes() > 0; ++i) io.run_for(GroupRequests::park_retry);
  EXPECT_TRUE(answered(2, Kind::written, 5));
  groups.read(group, replies.make(3), 100);
  auto r = replies.answer_to(3);
  ASSERT_TRUE(r && r->kind == Kind::data);
  EXPECT_EQ(text(r->bytes), "waits");
  groups.read(group, replies.make(4), 100);
  EXPECT_TRUE(answered(4, Kind::data, 0)) << "the interrupted write's message was queued";
  EXPECT_EQ(replies.violations(), 0);
}

}  // namespace
}  // namespace synchmess
