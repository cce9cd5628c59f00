// shm_ring_test.cpp - the ring alone: FIFO, limits, wrap-around, threads,
// processes killed between any two steps, and scribbled segments.
#include "ring/shm_ring.h"
#include "ring/shm_ring_testing.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace {

constexpr std::uint64_t kOverhead = 64;

// A ring in a shared anonymous mapping (so forked children share it).
class Segment {
 public:
  explicit Segment(std::uint64_t max_storage, std::uint64_t max_message = 1024)
      : bytes_(shm_ring_segment_bytes(max_storage)) {
    mem_ = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    EXPECT_NE(mem_, MAP_FAILED);
    EXPECT_EQ(shm_ring_format(&ring_, mem_, bytes_, max_message, max_storage, 1, 0), 0);
    max_message_ = max_message;
    max_storage_ = max_storage;
  }
  ~Segment() { ::munmap(mem_, bytes_); }

  const shm_ring* ring() const { return &ring_; }
  unsigned char* mem() const { return static_cast<unsigned char*>(mem_); }
  std::uint64_t bytes() const { return bytes_; }

  shm_ring_status write(const std::string& s, std::uint32_t pid = 1) const {
    return shm_ring_write(&ring_, s.data(), s.size(), max_message_, max_storage_, pid);
  }
  // The message, "" when empty; fails the test on another status.
  std::string read() const {
    static thread_local std::vector<char> buf(SHM_RING_MAX_PAYLOAD);  // zeroed once (TSan is slow)
    std::size_t n = 0;
    shm_ring_status st = shm_ring_read(&ring_, buf.data(), buf.size(), &n, 2);
    if (st == SHM_RING_EMPTY) return "";
    EXPECT_EQ(st, SHM_RING_OK);
    return std::string(buf.data(), n);
  }

 private:
  std::uint64_t bytes_;
  void* mem_ = nullptr;
  shm_ring ring_{};
  std::uint64_t max_message_ = 0, max_storage_ = 0;
};

int never_alive(std::uint32_t, void*) { return 0; }
int always_alive(std::uint32_t, void*) { return 1; }

// A record half freed: written, claimed by reader 77, marked FREED by
// freer 88, which named itself in word1 (named) or not yet.
void half_freed(const Segment& seg, bool named) {
  ASSERT_EQ(seg.write("freed"), SHM_RING_OK);
  ASSERT_EQ(shm_ring_test_claim(seg.ring(), 77), 0);
  ASSERT_EQ(shm_ring_test_free_until(seg.ring(), 88, named ? 1 : 0), 0);
}

std::string message(unsigned writer, unsigned seq, std::size_t len) {
  std::string s(len, '\0');
  std::snprintf(s.data(), len, "%u:%u:", writer, seq);
  for (std::size_t i = std::strlen(s.c_str()); i < len; ++i) s[i] = static_cast<char>('a' + (seq + i) % 26);
  return s;
}

TEST(ShmRing, AttachValidatesTheHeader) {
  Segment seg(1 << 20);
  shm_ring r{};
  EXPECT_EQ(shm_ring_attach(&r, seg.mem(), seg.bytes()), 0);
  EXPECT_EQ(r.capacity, seg.ring()->capacity);
  EXPECT_EQ(shm_ring_attach(&r, seg.mem(), seg.bytes() / 2), -1) << "capacity beyond the mapping";
  EXPECT_EQ(shm_ring_attach(&r, seg.mem(), 100), -1);
  seg.mem()[0] ^= 1;
  EXPECT_EQ(shm_ring_attach(&r, seg.mem(), seg.bytes()), -1) << "bad magic";
}

TEST(ShmRing, FifoWholeMessagesAndShortBuffers) {
  Segment seg(1 << 20);
  EXPECT_EQ(seg.read(), "");
  EXPECT_EQ(seg.write("one"), SHM_RING_OK);
  EXPECT_EQ(seg.write("two, longer"), SHM_RING_OK);
  EXPECT_EQ(seg.write(""), SHM_RING_OK) << "an empty write queues nothing";
  EXPECT_TRUE(shm_ring_nonempty(seg.ring()));
  std::uint64_t n = 0, b = 0;
  shm_ring_count(seg.ring(), &n, &b);
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(b, 14u);
  char small[3];
  std::size_t len = 0;
  ASSERT_EQ(shm_ring_read(seg.ring(), small, sizeof small, &len, 2), SHM_RING_OK);
  EXPECT_EQ(len, 3u);
  EXPECT_EQ(std::string(small, 3), "one");
  ASSERT_EQ(shm_ring_read(seg.ring(), small, 2, &len, 2), SHM_RING_OK);
  EXPECT_EQ(len, 11u) << "the whole message is consumed";
  EXPECT_EQ(std::string(small, 2), "tw");
  EXPECT_EQ(seg.read(), "");
  EXPECT_FALSE(shm_ring_nonempty(seg.ring()));
  EXPECT_EQ(shm_ring_stored(seg.ring()), 0u);
}

TEST(ShmRing, StorageLimitExactToTheByte) {
  const std::uint64_t limit = 3 * (100 + kOverhead);
  Segment seg(limit);
  std::string m(100, 'x');
  for (int i = 0; i < 3; ++i) EXPECT_EQ(seg.write(m), SHM_RING_OK);
  EXPECT_EQ(shm_ring_stored(seg.ring()), limit);
  EXPECT_EQ(seg.write("y"), SHM_RING_FULL);
  EXPECT_EQ(seg.read(), m);
  EXPECT_EQ(seg.write(std::string(101, 'z')), SHM_RING_FULL) << "one byte over";
  EXPECT_EQ(seg.write(m), SHM_RING_OK) << "exactly at the limit";
  EXPECT_EQ(seg.write(std::string(1025, 'z')), SHM_RING_TOO_BIG);
}

TEST(ShmRing, WrapsAroundForManyLapsInOrder) {
  Segment seg(64 * 1024, 65536);
  std::mt19937 rng(7);
  std::uint64_t lap_bytes = 0;
  unsigned written = 0, read = 0;
  while (lap_bytes < 20 * seg.ring()->capacity) {
    std::size_t len = 16 + rng() % (rng() % 4 == 0 ? 9000 : 200);
    auto st = shm_ring_write(seg.ring(), message(0, written, len).data(), len, 65536, 64 * 1024, 1);
    if (st == SHM_RING_OK) {
      ++written;
      lap_bytes += len;
    } else {
      ASSERT_EQ(st, SHM_RING_FULL);
    }
    if (st == SHM_RING_FULL || rng() % 3 == 0) {
      std::string got = seg.read();
      ASSERT_FALSE(got.empty());
      std::string want_prefix = "0:" + std::to_string(read) + ":";
      ASSERT_EQ(got.compare(0, want_prefix.size(), want_prefix), 0) << got.substr(0, 20);
      ASSERT_EQ(got, message(0, read, got.size()));
      ++read;
    }
  }
  for (; read < written; ++read) {
    std::string got = seg.read();
    ASSERT_EQ(got, message(0, read, got.size())) << read;
  }
  EXPECT_EQ(seg.read(), "");
}

// Many writers and readers at once (TSan checks the memory orders): every
// message read exactly once, each writer's messages in its order.
// Readers free in batches: records read but not yet freed hold room (not
// storage) until a batch is due, a writer lacks room, the sweep runs, or
// shm_ring_idle looks; the storage counter is exact at every step.
TEST(ShmRing, ReadersFreeInBatchesAndIdleFreesTheRest) {
  Segment seg(1 << 20);
  ASSERT_EQ(seg.write("one"), SHM_RING_OK);
  EXPECT_EQ(shm_ring_stored(seg.ring()), 3 + kOverhead);
  ASSERT_EQ(seg.read(), "one");
  EXPECT_EQ(shm_ring_stored(seg.ring()), 0u) << "the charge is released at the read, not when freed";
  EXPECT_TRUE(shm_ring_idle(seg.ring())) << "idle frees what the reader left released";
  // Over several batches (1024 units each) the counter stays exact and idle
  // frees whatever the last batch left.
  const std::string m(1000, 'b');
  for (int i = 0; i < 40; ++i) {
    ASSERT_EQ(seg.write(m), SHM_RING_OK);
    ASSERT_EQ(seg.read(), m);
  }
  std::uint64_t n = 0, b = 0;
  shm_ring_count(seg.ring(), &n, &b);
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(shm_ring_stored(seg.ring()), 0u);
  EXPECT_TRUE(shm_ring_idle(seg.ring()));
}

TEST(ShmRing, ConcurrentWritersAndReadersExactlyOnceInOrder) {
  Segment seg(256 * 1024);
  constexpr unsigned writers = 3, readers = 3, per_writer = 20000;
  std::vector<std::vector<std::uint8_t>> seen(writers, std::vector<std::uint8_t>(per_writer));
  std::atomic<unsigned> done_writers{0};
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  for (unsigned w = 0; w < writers; ++w)
    threads.emplace_back([&, w] {
      for (unsigned i = 0; i < per_writer;) {
        std::string m = message(w, i, 8 + (i * 7 + w) % 120);
        auto st = seg.write(m, 100 + w);
        if (st == SHM_RING_OK)
          ++i;
        else if (st != SHM_RING_FULL && st != SHM_RING_BUSY)
          failed = true;
        else
          std::this_thread::yield();
      }
      ++done_writers;
    });
  std::atomic<unsigned> received{0};
  for (unsigned rd = 0; rd < readers; ++rd)
    threads.emplace_back([&] {
      std::vector<long> last(writers, -1);
      char buf[256];
      for (;;) {
        std::size_t n = 0;
        auto st = shm_ring_read(seg.ring(), buf, sizeof buf, &n, 200);
        if (st == SHM_RING_OK) {
          unsigned w = 0, i = 0;
          if (std::sscanf(buf, "%u:%u:", &w, &i) != 2 || w >= writers || i >= per_writer ||
              std::string(buf, n) != message(w, i, n) || static_cast<long>(i) <= last[w]) {
            failed = true;
            return;
          }
          last[w] = i;
          seen[w][i]++;
          ++received;
        } else if (st == SHM_RING_EMPTY) {
          if (done_writers == writers && !shm_ring_nonempty(seg.ring())) return;
          std::this_thread::yield();
        } else if (st != SHM_RING_BUSY) {
          failed = true;
          return;
        }
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_FALSE(failed);
  EXPECT_EQ(received.load(), writers * per_writer);
  for (auto& s : seen)
    for (auto c : s) ASSERT_EQ(c, 1);
  EXPECT_EQ(shm_ring_stored(seg.ring()), 0u);
}

TEST(ShmRing, SendDelayIsPublishedInTheHeader) {
  Segment seg(1 << 20);
  EXPECT_EQ(shm_ring_delay(seg.ring()), 0u);
  shm_ring_set_delay(seg.ring(), 250);
  EXPECT_EQ(shm_ring_delay(seg.ring()), 250u);
  shm_ring r2{};
  ASSERT_EQ(shm_ring_attach(&r2, seg.mem(), seg.bytes()), 0);
  EXPECT_EQ(shm_ring_delay(&r2), 250u) << "another mapping sees it";
  ASSERT_EQ(shm_ring_format(&r2, seg.mem(), seg.bytes(), 1024, 1 << 20, 2, 0), 0);
  EXPECT_EQ(shm_ring_delay(seg.ring()), 0u) << "format starts at 0";
  // A scribbled value above 32 bits still reads as "not 0".
  std::uint64_t huge = ~std::uint64_t{0};
  std::memcpy(seg.mem() + 48, &huge, 8);  // delay_ms: the 7th word
  EXPECT_NE(shm_ring_delay(seg.ring()), 0u);
}

TEST(ShmRing, RetiredRingRefusesWritesAndDrainsInOrder) {
  Segment seg(1 << 20);
  ASSERT_EQ(seg.write("a"), SHM_RING_OK);
  ASSERT_EQ(seg.write("bb"), SHM_RING_OK);
  EXPECT_FALSE(shm_ring_retired(seg.ring()));
  ASSERT_EQ(shm_ring_retire(seg.ring()), SHM_RING_OK);
  EXPECT_TRUE(shm_ring_retired(seg.ring()));
  const std::uint64_t stored = shm_ring_stored(seg.ring());
  EXPECT_EQ(stored, 1 + 2 + 2 * kOverhead);
  EXPECT_EQ(seg.write("c"), SHM_RING_RETIRED);
  EXPECT_EQ(shm_ring_stored(seg.ring()), stored) << "nothing charged";
  ASSERT_TRUE(shm_ring_charge(seg.ring(), 1 + kOverhead, UINT64_MAX));
  EXPECT_EQ(shm_ring_write_charged(seg.ring(), "d", 1, 1), SHM_RING_RETIRED);
  shm_ring_uncharge(seg.ring(), 1 + kOverhead);  // the caller's, on failure
  EXPECT_TRUE(shm_ring_nonempty(seg.ring()));
  EXPECT_EQ(seg.read(), "a");
  EXPECT_EQ(seg.read(), "bb");
  char buf[8];
  std::size_t n = 0;
  EXPECT_EQ(shm_ring_read(seg.ring(), buf, sizeof buf, &n, 2), SHM_RING_RETIRED) << "retired and drained";
  EXPECT_EQ(shm_ring_stored(seg.ring()), 0u);
  EXPECT_EQ(shm_ring_retire(seg.ring()), SHM_RING_OK) << "idempotent";
  struct shm_ring_sweep_state sw{};
  unsigned fixed = 0;
  EXPECT_EQ(shm_ring_sweep(seg.ring(), &sw, 0, 1, 0, never_alive, nullptr, &fixed), SHM_RING_OK);
  EXPECT_EQ(shm_ring_sweep(seg.ring(), &sw, 10, 1, 0, never_alive, nullptr, &fixed), SHM_RING_OK)
      << "a retired ring is not corrupt";
  shm_ring r2{};
  ASSERT_EQ(shm_ring_format(&r2, seg.mem(), seg.bytes(), 1024, 1 << 20, 2, 0), 0);
  EXPECT_FALSE(shm_ring_retired(seg.ring())) << "format makes a live ring";
  EXPECT_EQ(seg.write("e"), SHM_RING_OK);
  EXPECT_EQ(seg.read(), "e");
}

TEST(ShmRing, RetireWaitsForTheNewestReservationsWord0) {
  Segment seg(1 << 20);
  ASSERT_EQ(seg.write("kept"), SHM_RING_OK);
  ASSERT_EQ(shm_ring_test_write_until(seg.ring(), "lost", 4, 4242, SHM_RING_STOP_WORD0), 0);
  EXPECT_EQ(shm_ring_retire(seg.ring()), SHM_RING_BUSY);
  EXPECT_FALSE(shm_ring_retired(seg.ring()));
  struct shm_ring_sweep_state sw{};
  unsigned fixed = 0;
  EXPECT_EQ(shm_ring_sweep(seg.ring(), &sw, 0, 100, 0, never_alive, nullptr, &fixed), SHM_RING_OK);
  EXPECT_EQ(shm_ring_sweep(seg.ring(), &sw, 100, 100, 0, never_alive, nullptr, &fixed), SHM_RING_OK);
  EXPECT_EQ(fixed, 1u);
  EXPECT_EQ(shm_ring_retire(seg.ring()), SHM_RING_OK);
  EXPECT_EQ(seg.read(), "kept");
  char buf[8];
  std::size_t n = 0;
  EXPECT_EQ(shm_ring_read(seg.ring(), buf, sizeof buf, &n, 2), SHM_RING_RETIRED) << "the dead record is skipped";
  EXPECT_EQ(shm_ring_stored(seg.ring()), 0u);
}

// Writers race the retirement: every write that returned OK is read from
// the retired ring (in its writer's order) before RETIRED, and no write
// that began after shm_ring_retire returned gets OK.
TEST(ShmRing, WritesRacingTheRetirementAreAllReadBeforeRetired) {
  for (int round = 0; round < 20; ++round) {
    Segment seg(256 * 1024);
    constexpr unsigned writers = 3;
    std::atomic<bool> retired{false}, failed{false};
    std::atomic<unsigned> ok_total{0};
    std::vector<unsigned> ok(writers, 0);
    std::vector<std::thread> threads;
    for (unsigned w = 0; w < writers; ++w)
      threads.emplace_back([&, w] {
        for (unsigned i = 0;;) {
          bool after = retired.load();
          std::string m = message(w, i, 8 + (i * 5 + w) % 60);
          auto st = seg.write(m, 100 + w);
          if (st == SHM_RING_OK) {
            if (after) failed = true;
            ++i;
            ++ok_total;
            ok[w] = i;
          } else if (st == SHM_RING_RETIRED) {
            return;
          } else if (st != SHM_RING_FULL && st != SHM_RING_BUSY) {
            failed = true;
            return;
          } else {
            std::this_thread::yield();
          }
        }
      });
    std::vector<long> last(writers, -1);
    unsigned received = 0;
    auto read_one = [&]() {
      char buf[128];
      std::size_t n = 0;
      auto st = shm_ring_read(seg.ring(), buf, sizeof buf, &n, 200);
      if (st == SHM_RING_OK) {
        unsigned w = 0, i = 0;
        if (std::sscanf(buf, "%u:%u:", &w, &i) != 2 || w >= writers || static_cast<long>(i) != last[w] + 1)
          failed = true;
        else
          last[w] = i;
        ++received;
      }
      return st;
    };
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (ok_total.load() < 200u + 50u * round && std::chrono::steady_clock::now() < deadline) (void)read_one();
    while (shm_ring_retire(seg.ring()) == SHM_RING_BUSY) std::this_thread::yield();
    retired = true;
    for (auto& t : threads) t.join();
    shm_ring_status st;
    while ((st = read_one()) == SHM_RING_OK || st == SHM_RING_BUSY) {
    }
    ASSERT_EQ(st, SHM_RING_RETIRED);
    ASSERT_FALSE(failed);
    EXPECT_EQ(received, ok_total.load());
    for (unsigned w = 0; w < writers; ++w) EXPECT_EQ(last[w] + 1, static_cast<long>(ok[w]));
    EXPECT_EQ(shm_ring_stored(seg.ring()), 0u);
  }
}

TEST(ShmRing, WriterKilledBeforeWord0IsSweptAndOthersGoOn) {
  Segment seg(1 << 20);
  ASSERT_EQ(seg.write("before"), SHM_RING_OK);
  ASSERT_EQ(shm_ring_test_write_until(seg.ring(), "lost", 4, 4242, SHM_RING_STOP_WORD0), 0);
  EXPECT_EQ(seg.read(), "before");
  EXPECT_EQ(seg.write("after"), SHM_RING_BUSY) << "the newest reservation has no word0";
  struct shm_ring_sweep_state sw{};
  unsigned fixed = 0;
  EXPECT_EQ(shm_ring_sweep(seg.ring(), &sw, 1000, 200, 0, never_alive, nullptr, &fixed), SHM_RING_OK);
  EXPECT_EQ(fixed, 0u) << "not before the stall bound";
  EXPECT_EQ(shm_ring_sweep(seg.ring(), &sw, 1200, 200, 0, never_alive, nullptr, &fixed), SHM_RING_OK);
  EXPECT_EQ(fixed, 1u);
  EXPECT_EQ(seg.write("after"), SHM_RING_OK);
  EXPECT_EQ(seg.read(), "after");
  EXPECT_EQ(seg.read(), "");
  EXPECT_EQ(shm_ring_stored(seg.ring()), 0u) << "the dead writer's charge is released";
}

TEST(ShmRing, WriterKilledBeforeCommitBlocksOnlyUntilTheSweep) {
  Segment seg(1 << 20);
  ASSERT_EQ(shm_ring_test_write_until(seg.ring(), "lost", 4, 4242, SHM_RING_STOP_COMMIT), 0);
  ASSERT_EQ(seg.write("behind"), SHM_RING_OK);
  std::size_t n = 0;
  char buf[16];
  EXPECT_EQ(shm_ring_read(seg.ring(), buf, sizeof buf, &n, 2), SHM_RING_BUSY) << "FIFO: the head is not committed";
  struct shm_ring_sweep_state sw{};
  unsigned fixed = 0;
  // A live writer gets SHM_RING_LIVE_STALLS x the stall bound.
  const std::uint64_t live = SHM_RING_LIVE_STALLS * 200;
  EXPECT_EQ(shm_ring_sweep(seg.ring(), &sw, 0, 200, 0, always_alive, nullptr, &fixed), SHM_RING_OK);
  EXPECT_EQ(shm_ring_sweep(seg.ring(), &sw, live - 1, 200, 0, always_alive, nullptr, &fixed), SHM_RING_OK);
  EXPECT_EQ(fixed, 0u);
  EXPECT_EQ(shm_ring_sweep(seg.ring(), &sw, live, 200, 0, always_alive, nullptr, &fixed), SHM_RING_OK);
  EXPECT_EQ(fixed, 1u);
  EXPECT_EQ(seg.read(), "behind");
  EXPECT_EQ(seg.read(), "");
  EXPECT_EQ(shm_ring_stored(seg.ring()), 0u);
}

TEST(ShmRing, ChargeLeakedByAKilledWriterIsAuditedWhenIdle) {
  Segment seg(3 * (10 + kOverhead));
  ASSERT_EQ(shm_ring_test_write_until(seg.ring(), "0123456789", 10, 4242, SHM_RING_STOP_RESERVE), 0);
  EXPECT_EQ(shm_ring_stored(seg.ring()), 10 + kOverhead);
  struct shm_ring_sweep_state sw{};
  unsigned fixed = 0;
  EXPECT_EQ(shm_ring_sweep(seg.ring(), &sw, 0, 200, 0, never_alive, nullptr, &fixed), SHM_RING_OK);
  EXPECT_EQ(shm_ring_sweep(seg.ring(), &sw, 300, 200, 0, never_alive, nullptr, &fixed), SHM_RING_OK);
  EXPECT_EQ(fixed, 1u);
  EXPECT_EQ(shm_ring_stored(seg.ring()), 0u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(seg.write("0123456789"), SHM_RING_OK);
}

TEST(ShmRing, ReaderKilledWhileCopyingFreesItsRecordAfterTheSweep) {
  Segment seg(4096);
  std::string big(1000, 'b');
  ASSERT_EQ(seg.write(big), SHM_RING_OK);
  ASSERT_EQ(shm_ring_test_claim(seg.ring(), 77), 0);
  EXPECT_EQ(seg.read(), "") << "the claimed message is the dead reader's own";
  // The ring's room stays held until the sweep frees the record.
  struct shm_ring_sweep_state sw{};
  unsigned fixed = 0;
  EXPECT_EQ(shm_ring_sweep(seg.ring(), &sw, 0, 200, 0, never_alive, nullptr, &fixed), SHM_RING_OK);
  EXPECT_EQ(shm_ring_sweep(seg.ring(), &sw, 200, 200, 0, never_alive, nullptr, &fixed), SHM_RING_OK);
  EXPECT_EQ(fixed, 1u);
  // Many laps now work: the space came back.
  for (int i = 0; i < 2000; ++i) {
    ASSERT_EQ(seg.write(big), SHM_RING_OK) << i;
    ASSERT_EQ(seg.read(), big);
  }
}

// The windows in which word1 does not name the process stuck in a record
// (a writer between its tail CAS and word1, a reader between its claim and
// naming itself, a freer before naming itself): that process may be alive
// and only slow, and writes into the record when it resumes, so the sweep
// gives such a record up only after the live bound, even if the pid it
// finds in word1 is gone.  (Giving it up after one stall bound let the ring
// reuse the record under the slow process: a garbled or lost message.)
// Sweeps (every pid gone) at 0 and at the live bound - 1: nothing given
// up; then at the live bound: one record.
void expect_given_up_at_the_live_bound(const Segment& seg, std::uint64_t stall, const char* what) {
  const std::uint64_t live = SHM_RING_LIVE_STALLS * stall;
  struct shm_ring_sweep_state sw{};
  unsigned fixed = 0;
  EXPECT_EQ(shm_ring_sweep(seg.ring(), &sw, 0, stall, 0, never_alive, nullptr, &fixed), SHM_RING_OK);
  EXPECT_EQ(shm_ring_sweep(seg.ring(), &sw, live - 1, stall, 0, never_alive, nullptr, &fixed), SHM_RING_OK);
  EXPECT_EQ(fixed, 0u) << what;
  EXPECT_EQ(shm_ring_sweep(seg.ring(), &sw, live, stall, 0, never_alive, nullptr, &fixed), SHM_RING_OK);
  EXPECT_EQ(fixed, 1u);
}

TEST(ShmRing, ARecordWhoseWord1NamesNobodyWaitsTheLiveBound) {
  const std::uint64_t stall = 200;
  {  // A writer between its tail CAS and word1.
    Segment seg(1 << 20);
    ASSERT_EQ(shm_ring_test_write_until(seg.ring(), "slow", 4, 4242, SHM_RING_STOP_WORD1), 0);
    expect_given_up_at_the_live_bound(seg, stall, "a writer that has not named itself was given up before the live bound");
    EXPECT_EQ(seg.write("after"), SHM_RING_OK);
    EXPECT_EQ(seg.read(), "after");
  }
  {  // A reader between its claim and naming itself; the writer is gone.
    Segment seg(4096);
    ASSERT_EQ(seg.write("claimed"), SHM_RING_OK);
    ASSERT_EQ(shm_ring_test_claim_unnamed(seg.ring()), 0);
    expect_given_up_at_the_live_bound(seg, stall, "a claim was given up because its writer is gone");
  }
  {  // A freer before naming itself (word1 names the reader, gone).
    Segment seg(4096);
    ASSERT_NO_FATAL_FAILURE(half_freed(seg, false));
    expect_given_up_at_the_live_bound(seg, stall, "a record being freed was taken over because its reader is gone");
  }
}

// Once word1 names the process, the short bound applies if it is gone,
// the live bound if it exists.
TEST(ShmRing, AFreerThatNamedItselfIsTakenOverAfterTheStallBoundOnlyIfGone) {
  const std::uint64_t stall = 200, live = SHM_RING_LIVE_STALLS * stall;
  unsigned fixed = 0;
  for (bool alive : {false, true}) {
    Segment seg(4096);
    ASSERT_NO_FATAL_FAILURE(half_freed(seg, true));
    struct shm_ring_sweep_state sw{};
    auto fn = alive ? always_alive : never_alive;
    EXPECT_EQ(shm_ring_sweep(seg.ring(), &sw, 0, stall, 0, fn, nullptr, &fixed), SHM_RING_OK);
    EXPECT_EQ(shm_ring_sweep(seg.ring(), &sw, stall, stall, 0, fn, nullptr, &fixed), SHM_RING_OK);
    EXPECT_EQ(fixed, alive ? 0u : 1u) << "alive " << alive;
    if (alive) {
      EXPECT_EQ(shm_ring_sweep(seg.ring(), &sw, live, stall, 0, fn, nullptr, &fixed), SHM_RING_OK);
      EXPECT_EQ(fixed, 1u);
    }
    for (int i = 0; i < 200; ++i) {  // the room came back
      ASSERT_EQ(seg.write(std::string(1000, 'x')), SHM_RING_OK) << i;
      ASSERT_EQ(seg.read(), std::string(1000, 'x'));
    }
  }
}

// Random bytes anywhere in the segment: no operation reads or writes
// outside it (ASan), none hangs; the sweep reports corruption or the ring
// keeps working; after a re-format everything works again.
TEST(ShmRing, ScribbledSegmentsNeverCrashAndRecoverAfterFormat) {
  Segment seg(16 * 1024);
  std::mt19937_64 rng(99);
  for (int round = 0; round < 300; ++round) {
    for (int i = 0; i < 20; ++i) (void)seg.write(message(1, i, 1 + rng() % 300));
    for (int i = 0; i < 5; ++i) (void)seg.read();
    int scribbles = 1 + rng() % 8;
    for (int i = 0; i < scribbles; ++i) {
      std::uint64_t at = rng() % 3 == 0 ? rng() % 512 : rng() % seg.bytes();
      std::uint64_t v = rng();
      std::memcpy(seg.mem() + (at & ~std::uint64_t{7}), &v, std::min<std::uint64_t>(8, seg.bytes() - at));
    }
    char buf[2048];
    for (int i = 0; i < 40; ++i) {
      std::size_t n = 0;
      auto st = shm_ring_read(seg.ring(), buf, sizeof buf, &n, 2);
      ASSERT_LE(n, SHM_RING_MAX_PAYLOAD);
      (void)st;
      (void)seg.write("x");
    }
    struct shm_ring_sweep_state sw{};
    unsigned fixed = 0;
    auto st = shm_ring_sweep(seg.ring(), &sw, 0, 1, 0, never_alive, nullptr, &fixed);
    st = st == SHM_RING_CORRUPT ? st : shm_ring_sweep(seg.ring(), &sw, 10, 1, 0, never_alive, nullptr, &fixed);
    if (st == SHM_RING_CORRUPT || round % 10 == 9) {
      shm_ring r2{};
      ASSERT_EQ(shm_ring_format(&r2, seg.mem(), seg.bytes(), 1024, 16 * 1024, round, 0), 0);
      EXPECT_EQ(seg.write("fresh"), SHM_RING_OK);
      EXPECT_EQ(seg.read(), "fresh");
      EXPECT_EQ(seg.read(), "");
    }
  }
}

// Processes SIGKILLed at arbitrary instants while writing and reading:
// after the sweep the ring goes on, and nothing is read twice.
TEST(ShmRing, ProcessesKilledAtAnyInstantNeverWedgeTheRing) {
  Segment seg(64 * 1024);
  auto* seen = static_cast<std::atomic<std::uint8_t>*>(
      ::mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(static_cast<void*>(seen), MAP_FAILED);
  // Messages each round's writer has written.  The first round waits for
  // two before its random instant: a forked child under TSan may take more
  // than 3.5 ms to its first write, and one killed between two steps of it
  // leaves every later writer BUSY until the sweep below, so nothing would
  // ever be written (then `total` is 0).  Two: a reader killed copying
  // loses at most one.
  auto* written = static_cast<std::atomic<std::uint32_t>*>(
      ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(static_cast<void*>(written), MAP_FAILED);
  std::mt19937 rng(3);
  unsigned next_writer = 0;
  auto alive = [](std::uint32_t pid, void*) { return ::kill(static_cast<pid_t>(pid), 0) == 0 ? 1 : 0; };
  for (int round = 0; round < 40; ++round) {
    unsigned w = next_writer++;
    pid_t writer = ::fork();
    ASSERT_GE(writer, 0);
    if (writer == 0) {
      for (unsigned i = 0;; ++i) {
        std::string m = message(w, i, 16 + i % 50);
        while (shm_ring_write(seg.ring(), m.data(), m.size(), 1024, 64 * 1024, ::getpid()) != SHM_RING_OK)
          sched_yield();
        written[w].fetch_add(1);
      }
    }
    pid_t reader = ::fork();
    ASSERT_GE(reader, 0);
    if (reader == 0) {
      char buf[128];
      for (;;) {
        std::size_t n = 0;
        if (shm_ring_read(seg.ring(), buf, sizeof buf, &n, ::getpid()) == SHM_RING_OK) {
          unsigned ww = 0, i = 0;
          if (std::sscanf(buf, "%u:%u:", &ww, &i) == 2 && ww < 40 && i < 25000) seen[ww * 25000 + i]++;
        }
      }
    }
    if (round == 0) {
      for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
           written[w].load() < 2 && std::chrono::steady_clock::now() < until;)
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      EXPECT_GE(written[w].load(), 2u) << "the first writer did not write two messages in 30 s";
    }
    std::this_thread::sleep_for(std::chrono::microseconds(500 + rng() % 3000));
    ::kill(writer, SIGKILL);
    ::kill(reader, SIGKILL);
    ::waitpid(writer, nullptr, 0);
    ::waitpid(reader, nullptr, 0);
  }
  // Repair: run the sweep (dead pids) until a write gets through.  A ring
  // the killed writer filled (its reader got little CPU on a busy machine)
  // is not wedged: reading makes room, and what is read counts as seen.
  struct shm_ring_sweep_state sw{};
  unsigned fixed = 0;
  char buf[128];
  auto start = std::chrono::steady_clock::now();
  bool through = false;
  for (std::uint64_t now = 0; !through && std::chrono::steady_clock::now() - start < std::chrono::seconds(10); now += 50) {
    ASSERT_EQ(shm_ring_sweep(seg.ring(), &sw, now, 100, 0, +alive, nullptr, &fixed), SHM_RING_OK);
    auto wrote = seg.write("probe");
    through = wrote == SHM_RING_OK;
    std::size_t n = 0;
    if (wrote == SHM_RING_FULL && shm_ring_read(seg.ring(), buf, sizeof buf, &n, 1) == SHM_RING_OK) {
      unsigned ww = 0, i = 0;
      ASSERT_EQ(std::sscanf(buf, "%u:%u:", &ww, &i), 2);
      seen[ww * 25000 + i]++;
    }
  }
  ASSERT_TRUE(through);
  // Drain: what is left is read once, then the probe.
  for (;;) {
    std::size_t n = 0;
    auto st = shm_ring_read(seg.ring(), buf, sizeof buf, &n, 1);
    if (st == SHM_RING_BUSY) {
      std::uint64_t now = 100000;
      shm_ring_sweep(seg.ring(), &sw, now, 100, 0, +alive, nullptr, &fixed);
      shm_ring_sweep(seg.ring(), &sw, now + 100, 100, 0, +alive, nullptr, &fixed);
      continue;
    }
    ASSERT_EQ(st, SHM_RING_OK);
    if (std::string(buf, n) == "probe") break;
    unsigned ww = 0, i = 0;
    ASSERT_EQ(std::sscanf(buf, "%u:%u:", &ww, &i), 2);
    seen[ww * 25000 + i]++;
  }
  unsigned total = 0;
  for (std::size_t i = 0; i < 40 * 25000; ++i) {
    ASSERT_LE(seen[i].load(), 1) << "message " << i / 25000 << ":" << i % 25000 << " read twice";
    total += seen[i].load();
  }
  EXPECT_GT(total, 0u);
  ::munmap(written, 4096);
  ::munmap(seen, 1 << 20);
}

}  // namespace
