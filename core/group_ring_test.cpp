// group_ring_test.cpp - a group whose queue is a ring in a shared segment:
// the daemon's operations mixed with a "client" that maps the same memfd
// and uses the ring directly (what libsynchmess-fast.so does).
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/group.h"
#include "core/test_support.h"
#include "ring/shm_ring.h"
#include "ring/shm_ring_testing.h"

namespace synchmess {
namespace {

using testing::IoThread;
using testing::eventually;

std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s)); }

std::string take(Group& g) {
  auto m = g.receive();
  if (!m) return {};
  return std::string(reinterpret_cast<const char*>(m->data()), m->size());
}

// A client's own mapping of the group's current segment.
class Client {
 public:
  explicit Client(Group& g) {
    auto seg = g.fast_segment();
    EXPECT_TRUE(seg.has_value());
    if (!seg) return;
    bytes_ = seg->bytes;
    generation_ = seg->generation;
    EXPECT_EQ(::fcntl(seg->fd, F_GET_SEALS) & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
              F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    mem_ = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, seg->fd, 0);
    EXPECT_NE(mem_, MAP_FAILED);
    EXPECT_EQ(shm_ring_attach(&ring_, mem_, bytes_), 0);
  }
  ~Client() {
    if (mem_ != nullptr && mem_ != MAP_FAILED) ::munmap(mem_, bytes_);
  }
  shm_ring_status write(std::string_view s) {
    std::uint64_t msg = 0, storage = 0;
    shm_ring_limits(&ring_, &msg, &storage);
    return shm_ring_write(&ring_, s.data(), s.size(), msg, storage, 4242);
  }
  // "" when empty; the status otherwise in *st.
  std::string read(shm_ring_status* st = nullptr) {
    char buf[4096];
    std::size_t n = 0;
    shm_ring_status s = shm_ring_read(&ring_, buf, sizeof buf, &n, 4242);
    if (st) *st = s;
    return s == SHM_RING_OK ? std::string(buf, n) : std::string();
  }
  const shm_ring* ring() const { return &ring_; }
  unsigned char* mem() const { return static_cast<unsigned char*>(mem_); }
  std::uint64_t generation() const { return generation_; }

 private:
  void* mem_ = nullptr;
  std::uint64_t bytes_ = 0, generation_ = 0;
  shm_ring ring_{};
};

int never_alive(std::uint32_t, void*) { return 0; }

class GroupRingTest : public ::testing::Test {
 protected:
  IoThread io;
  Limits limits;
  std::unique_ptr<Group> group;
  void make() { group = std::make_unique<Group>(io.executor(), limits, GroupOptions{.descriptor = 3}); }
  ~GroupRingTest() override {
    if (group) group->shutdown();
    io.stop();
  }
};

TEST_F(GroupRingTest, DaemonAndClientWritesShareOneFifoBothWays) {
  make();
  Client c(*group);
  EXPECT_EQ(c.generation(), 1u);
  ASSERT_EQ(group->send(bytes("d1")).value(), 2u);
  ASSERT_EQ(c.write("c1"), SHM_RING_OK);
  ASSERT_EQ(group->send(bytes("d2")).value(), 2u);
  ASSERT_EQ(c.write("c2"), SHM_RING_OK);
  EXPECT_TRUE(group->readable());
  EXPECT_EQ(c.read(), "d1") << "the client reads the daemon's write";
  EXPECT_EQ(take(*group), "c1") << "the daemon reads the client's write";
  EXPECT_EQ(c.read(), "d2");
  EXPECT_EQ(take(*group), "c2");
  EXPECT_FALSE(group->readable());
  EXPECT_EQ(group->stored_bytes(), 0u);
  auto s = group->stats();
  EXPECT_EQ(s.queued_messages, 0u);
  ASSERT_EQ(c.write("queued"), SHM_RING_OK);
  s = group->stats();
  EXPECT_EQ(s.queued_messages, 1u) << "counted from the ring";
  EXPECT_EQ(s.queued_bytes, 6u);
}

TEST_F(GroupRingTest, StorageLimitIsExactAcrossBothPaths) {
  limits.max_storage_size = 2 * storage_charge(10) + storage_charge(5);
  make();
  Client c(*group);
  ASSERT_EQ(group->send(bytes("0123456789")).value(), 10u);
  ASSERT_EQ(c.write("0123456789"), SHM_RING_OK);
  EXPECT_EQ(c.write("012345"), SHM_RING_FULL) << "one byte over";
  EXPECT_EQ(group->send(bytes("012345")).error(), Errc::storage_full) << "the same byte on the device";
  EXPECT_EQ(c.write("01234"), SHM_RING_OK) << "exactly full";
  EXPECT_EQ(group->send(bytes("x")).error(), Errc::storage_full);
  EXPECT_EQ(group->stored_bytes(), limits.max_storage_size.load());
  EXPECT_EQ(take(*group), "0123456789");
  EXPECT_EQ(c.write("0123456789"), SHM_RING_OK) << "a daemon read makes room for a client";
  EXPECT_EQ(c.read(), "0123456789");
  EXPECT_EQ(group->send(bytes("0123456789")).value(), 10u) << "a client read makes room for the daemon";
}

TEST_F(GroupRingTest, DelayedMessagesChargeAtWriteAndArePublishedIntoTheRing) {
  limits.max_storage_size = storage_charge(4) + storage_charge(4);
  make();
  Client c(*group);
  ASSERT_TRUE(group->set_send_delay(30).has_value());
  EXPECT_EQ(shm_ring_delay(c.ring()), 30u) << "published for the clients";
  ASSERT_EQ(group->send(bytes("late")).value(), 4u);
  EXPECT_EQ(group->stored_bytes(), storage_charge(4)) << "charged at the write";
  EXPECT_EQ(c.write("fast"), SHM_RING_OK);
  EXPECT_EQ(c.write("more"), SHM_RING_FULL) << "the delayed message counts for the client too";
  EXPECT_EQ(c.read(), "fast");
  ASSERT_TRUE(eventually([&] { return group->readable(); }));
  EXPECT_EQ(c.read(), "late") << "published into the ring the client reads";
  EXPECT_EQ(group->stored_bytes(), 0u);
  // Revoked: its charge goes back.
  ASSERT_EQ(group->send(bytes("gone")).value(), 4u);
  EXPECT_EQ(group->revoke_delayed(), 1u);
  EXPECT_EQ(group->stored_bytes(), 0u);
  // Flushed: readable at once, in order behind what is queued.
  ASSERT_EQ(group->send(bytes("flsh")).value(), 4u);
  EXPECT_EQ(group->flush_delayed(), 1u);
  EXPECT_EQ(c.read(), "flsh");
}

// IOCTL_SET_PARAMS raising max_storage_size: writes up to the new limit,
// the messages of the old segment first, a client of the old segment told
// RETIRED, and no ticket for the new segment until the old one drained.
TEST_F(GroupRingTest, GrowsWhenTheLimitRisesAndKeepsFifoAcrossSegments) {
  make();
  const std::uint64_t first_holds = Group::min_segment_holds;
  Client c(*group);
  std::string payload(1000, 'p');
  unsigned old_count = 0;
  // Fill the old segment to its limit, alternating paths.
  for (;; ++old_count) {
    std::string m = std::to_string(old_count) + ":" + payload;
    m.resize(1000);
    bool ok = old_count % 2 == 0 ? group->send(bytes(m)).has_value() : c.write(m) == SHM_RING_OK;
    if (!ok) break;
  }
  ASSERT_GT(old_count, 100u);
  EXPECT_EQ(group->send(bytes(payload)).error(), Errc::storage_full);
  // Raise the limit to 3 MiB (what IOCTL_SET_PARAMS does, then apply_limits).
  const std::uint64_t limit = 3 * first_holds;
  limits.max_storage_size = limit;
  group->apply_limits();
  EXPECT_EQ(group->generation(), 2u);
  EXPECT_EQ(c.write("late client"), SHM_RING_RETIRED) << "the old segment takes no more writes";
  EXPECT_EQ(group->fast_segment().error(), Errc::try_again) << "not while the old one drains";
  // The daemon now accepts writes up to the new limit exactly, counting
  // the old segment's messages.
  unsigned new_count = 0;
  for (;; ++new_count) {
    std::string m = "n" + std::to_string(new_count) + ":" + payload;
    m.resize(1000);
    if (!group->send(bytes(m))) break;
  }
  EXPECT_LE(limit - group->stored_bytes(), storage_charge(1000) - 1) << "stopped only at the limit";
  EXPECT_EQ(group->stored_bytes(), (old_count + new_count) * storage_charge(1000));
  // FIFO: every old message (read by both the old mapping and the
  // daemon), then the new ones.
  for (unsigned i = 0; i < old_count; ++i) {
    std::string got = i % 3 == 0 ? c.read() : take(*group);
    ASSERT_EQ(got.substr(0, got.find(':')), std::to_string(i)) << i;
  }
  shm_ring_status st;
  EXPECT_EQ(c.read(&st), "");
  EXPECT_EQ(st, SHM_RING_RETIRED) << "drained";
  for (unsigned i = 0; i < new_count; ++i) {
    std::string got = take(*group);
    ASSERT_EQ(got.substr(0, got.find(':')), "n" + std::to_string(i)) << i;
  }
  EXPECT_EQ(take(*group), "");
  EXPECT_EQ(group->stored_bytes(), 0u);
  // Drained: the new segment is handed out and used as before.
  Client c2(*group);
  EXPECT_EQ(c2.generation(), 2u);
  ASSERT_EQ(c2.write("after"), SHM_RING_OK);
  EXPECT_EQ(take(*group), "after");
  // The sweep gives the drained segment's pages back and keeps the group.
  auto report = group->sweep(0, 100, never_alive, nullptr);
  EXPECT_FALSE(report.reformatted);
  EXPECT_EQ(report.generation, 2u);
}

// Delayed messages pending across a growth keep their charge and are
// published into the new ring after the old one's messages.
TEST_F(GroupRingTest, DelayedMessagesSurviveGrowthInOrder) {
  limits.max_storage_size = 4 * storage_charge(3);
  make();
  ASSERT_EQ(group->send(bytes("im1")).value(), 3u);
  ASSERT_TRUE(group->set_send_delay(40).has_value());
  ASSERT_EQ(group->send(bytes("dl1")).value(), 3u);
  limits.max_storage_size = 2 * Group::min_segment_holds;
  group->apply_limits();
  EXPECT_EQ(group->generation(), 2u);
  EXPECT_EQ(group->stored_bytes(), 2 * storage_charge(3));
  EXPECT_EQ(group->flush_delayed(), 1u);
  EXPECT_EQ(take(*group), "im1");
  EXPECT_EQ(take(*group), "dl1");
  EXPECT_EQ(group->stored_bytes(), 0u);
}

// A client scribbles over the segment: the sweep detects it, re-formats the
// ring (its messages lost), keeps delayed messages with their charge, and
// the group works again for both paths.
TEST_F(GroupRingTest, CorruptRingIsReformattedAndDelayedMessagesKept) {
  make();
  Client c(*group);
  ASSERT_EQ(group->send(bytes("lost")).value(), 4u);
  ASSERT_TRUE(group->set_send_delay(60000).has_value());
  ASSERT_EQ(group->send(bytes("kept")).value(), 4u);
  // Garbage over the positions and the counter.
  for (std::size_t off = 64; off < 512; off += 8) {
    std::uint64_t v = 0x9e3779b97f4a7c15ull * (off + 1);
    std::memcpy(c.mem() + off, &v, 8);
  }
  EXPECT_EQ(take(*group), "") << "nothing readable from a corrupt ring, and no crash";
  SweepReport r;
  for (std::uint64_t now = 0; now < 1000 && !r.reformatted; now += 100) r = group->sweep(now, 100, never_alive, nullptr);
  ASSERT_TRUE(r.reformatted);
  EXPECT_FALSE(group->needs_repair());
  EXPECT_EQ(group->stored_bytes(), storage_charge(4)) << "the delayed message's charge is applied again";
  EXPECT_EQ(shm_ring_delay(c.ring()), 60000u) << "the delay is published again";
  EXPECT_EQ(group->delayed(), 1u);
  ASSERT_TRUE(group->set_send_delay(0).has_value() == false);  // still pending
  EXPECT_EQ(group->flush_delayed(), 1u);
  EXPECT_EQ(c.read(), "kept") << "the client's mapping works on the re-formatted ring";
  ASSERT_EQ(group->revoke_delayed(), 0u);
  ASSERT_TRUE(group->set_send_delay(0).has_value());
  EXPECT_EQ(c.write("again"), SHM_RING_OK);
  EXPECT_EQ(take(*group), "again");
  EXPECT_EQ(group->stored_bytes(), 0u);
}

// Statistics: a fast client's writes and reads (the hints it bumps in the
// segment, as libsynchmess-fast.so does) add to the daemon's own counts;
// they stay counted across a growth (the retired segment's) and a
// re-format (the corrupt ring's); a forged hint is clamped.
TEST_F(GroupRingTest, FastPathHintsCountInStatisticsClamped) {
  make();
  {
    Client c(*group);
    for (int i = 0; i < 3; ++i) {
      ASSERT_EQ(c.write("fast"), SHM_RING_OK);
      shm_ring_note_sent(c.ring());
    }
    ASSERT_TRUE(group->send(bytes("device")).has_value());
    EXPECT_EQ(c.read(), "fast");
    shm_ring_note_received(c.ring());
    GroupStats s = group->stats();
    EXPECT_EQ(s.sent, 4u);
    EXPECT_EQ(s.received, 1u);
    EXPECT_EQ(s.queued_messages, 3u);
    while (take(*group) != "") {}
    EXPECT_EQ(group->stats().received, 4u) << "1 fast + 3 device reads";
  }
  // Growth: the retired segment's counts stay in the totals.
  limits.max_storage_size = 2 * Group::min_segment_holds;
  group->apply_limits();
  ASSERT_EQ(group->generation(), 2u);
  EXPECT_EQ(take(*group), "") << "the old segment is drained: readers move on";
  Client c2(*group);
  ASSERT_EQ(c2.write("new"), SHM_RING_OK);
  shm_ring_note_sent(c2.ring());
  EXPECT_EQ(group->stats().sent, 5u);
  // Forged hints: clamped, whatever the client wrote.
  shm_ring_test_set_fast_counts(c2.ring(), UINT64_MAX, UINT64_MAX - 1);
  GroupStats s = group->stats();
  EXPECT_EQ(s.sent, 4u + Segment::fast_count_limit);
  EXPECT_EQ(s.received, 4u + Segment::fast_count_limit);
  shm_ring_test_set_fast_counts(c2.ring(), 7, 2);
  // Garbage over the positions and the storage counter (not the hints):
  // the re-format keeps what was counted.
  for (std::size_t off = 64; off < 320; off += 8) {
    std::uint64_t v = 0x9e3779b97f4a7c15ull * (off + 1);
    std::memcpy(c2.mem() + off, &v, 8);
  }
  SweepReport r;
  for (std::uint64_t now = 0; now < 1000 && !r.reformatted; now += 100) r = group->sweep(now, 100, never_alive, nullptr);
  ASSERT_TRUE(r.reformatted);
  s = group->stats();
  EXPECT_EQ(s.sent, 4u + 7u);
  EXPECT_EQ(s.received, 4u + 2u);
  ASSERT_EQ(c2.write("after"), SHM_RING_OK);
  shm_ring_note_sent(c2.ring());
  EXPECT_EQ(group->stats().sent, 4u + 7u + 1u);
}

// A client killed between two steps of a write: the daemon's writes wait
// only until the sweep declares the record dead.
TEST_F(GroupRingTest, ClientKilledMidWriteIsSweptAndTheGroupGoesOn) {
  make();
  Client c(*group);
  ASSERT_EQ(group->send(bytes("first")).value(), 5u);
  ASSERT_EQ(shm_ring_test_write_until(c.ring(), "dead", 4, 999999, SHM_RING_STOP_COMMIT), 0);
  ASSERT_EQ(group->send(bytes("behind")).value(), 6u);
  EXPECT_EQ(take(*group), "first");
  EXPECT_EQ(take(*group), "") << "FIFO: the dead reservation is at the head";
  group->sweep(0, 100, never_alive, nullptr);
  auto r = group->sweep(100, 100, never_alive, nullptr);
  EXPECT_EQ(r.repaired, 1u);
  EXPECT_EQ(take(*group), "behind");
  EXPECT_EQ(group->stored_bytes(), 0u);
}

// A client clears the pollers flag: the sweep publishes the daemon's own
// flag again, and tells the listener if a message came meanwhile (a fast
// writer that read the flag clear did not kick).
TEST_F(GroupRingTest, SweepRestoresAClearedPollersFlagAndWakesPollers) {
  struct Counting final : GroupListener {
    std::atomic<int> told{0};
    void on_readable(Group&) noexcept override { told.fetch_add(1); }
  } listener;
  group = std::make_unique<Group>(io.executor(), limits, GroupOptions{.descriptor = 3, .listener = &listener});
  Client c(*group);
  group->set_pollers(true);
  EXPECT_EQ(shm_ring_pollers(c.ring()), 1);
  shm_ring_set_pollers(c.ring(), 0);
  group->sweep(0, 100, never_alive, nullptr);
  EXPECT_EQ(shm_ring_pollers(c.ring()), 1) << "re-published";
  EXPECT_EQ(listener.told.load(), 0) << "nothing to read: nobody woken";
  shm_ring_set_pollers(c.ring(), 0);
  ASSERT_EQ(c.write("w"), SHM_RING_OK);  // a fast writer sees the flag clear: no kick
  group->sweep(100, 100, never_alive, nullptr);
  EXPECT_EQ(shm_ring_pollers(c.ring()), 1);
  EXPECT_EQ(listener.told.load(), 1) << "the sweep woke the pollers for the message";
  group->sweep(200, 100, never_alive, nullptr);
  EXPECT_EQ(listener.told.load(), 1) << "only when it restored the flag";
  group->set_pollers(false);
  shm_ring_set_pollers(c.ring(), 1);  // a forged flag only costs kicks; the sweep clears it
  group->sweep(300, 100, never_alive, nullptr);
  EXPECT_EQ(shm_ring_pollers(c.ring()), 0);
  EXPECT_EQ(take(*group), "w");
}

}  // namespace
}  // namespace synchmess
