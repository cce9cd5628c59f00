// SessionReaders on a SOCK_SEQPACKET socketpair in place of /dev/fuse (one
// request per read, as the kernel delivers them, and a blocking read) with
// a recording process callback.
#include "requests/session_readers.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace synchmess {
namespace {

constexpr std::size_t request_size = 64;  // more than a request header (40)

class SessionReadersTest : public ::testing::Test {
 protected:
  SessionReadersTest() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) std::abort();
    reader_fd = sv[0];
    kernel_fd = sv[1];
  }
  ~SessionReadersTest() override {
    if (readers) readers->stop();
    if (kernel_fd >= 0) ::close(kernel_fd);
    ::close(reader_fd);
  }

  void make_readers(unsigned count) {
    readers = std::make_unique<SessionReaders>(
        reader_fd, "test", count, [this](std::byte* data, std::size_t n) { processed(data, n); },
        [this] {
          closed++;
          cv.notify_all();
        });
  }
  bool send(unsigned seq, std::size_t size = request_size) {
    std::vector<std::byte> buf(size);
    std::memcpy(buf.data(), &seq, std::min(size, sizeof seq));
    return ::send(kernel_fd, buf.data(), size, MSG_DONTWAIT) == static_cast<ssize_t>(size);
  }
  void processed(std::byte* data, std::size_t n) {
    unsigned seq = 0;
    std::memcpy(&seq, data, sizeof seq);
    if (hook) hook(seq);
    {
      std::lock_guard lock(mu);
      EXPECT_EQ(n, request_size);
      seen.push_back(seq);
      threads.insert(std::this_thread::get_id());
    }
    cv.notify_all();
  }
  template <class Pred>
  bool wait(Pred pred) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10), pred);
  }

  // For state no callback reports (parked readers): checked every
  // millisecond, for up to 10 s.
  template <class Pred>
  static bool eventually(Pred pred) {
    for (auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
         std::chrono::steady_clock::now() < end; std::this_thread::sleep_for(std::chrono::milliseconds(1)))
      if (pred()) return true;
    return pred();
  }

  int reader_fd = -1;
  int kernel_fd = -1;
  std::unique_ptr<SessionReaders> readers;
  std::function<void(unsigned)> hook;  // set before start
  std::mutex mu;
  std::condition_variable cv;
  std::vector<unsigned> seen;           // guarded by mu
  std::set<std::thread::id> threads;    // guarded by mu: where requests were processed
  std::atomic<int> closed{0};
};

TEST_F(SessionReadersTest, ProcessesEveryRequestOnceOnAReaderThread) {
  make_readers(3);
  ASSERT_TRUE(readers->start());
  for (unsigned i = 0; i < 200; ++i) ASSERT_TRUE(send(i));
  ASSERT_TRUE(wait([&] { return seen.size() == 200; }));
  readers->stop();
  std::vector<unsigned> want(200);
  for (unsigned i = 0; i < 200; ++i) want[i] = i;
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, want);
  EXPECT_GE(threads.size(), 1u);
  EXPECT_LE(threads.size(), 3u);
  EXPECT_FALSE(threads.contains(std::this_thread::get_id()));
  EXPECT_EQ(closed.load(), 0);
}

// While one reader is busy with a request, another reads and answers the
// next one: request 1 waits until request 2 was processed.
TEST_F(SessionReadersTest, AnotherReaderServesWhileOneIsBusy) {
  // Request 1's handler returns only once request 2 is recorded as
  // processed (recording happens after the hook, so waiting for a flag set
  // in request 2's hook would let 1 be recorded first).
  hook = [&](unsigned seq) {
    if (seq == 1) {
      EXPECT_TRUE(wait([&] { return std::find(seen.begin(), seen.end(), 2u) != seen.end(); }));
    }
  };
  make_readers(2);
  ASSERT_TRUE(readers->start());
  ASSERT_TRUE(send(1));
  ASSERT_TRUE(send(2));
  ASSERT_TRUE(wait([&] { return seen.size() == 2; }));
  readers->stop();
  EXPECT_EQ(seen, (std::vector<unsigned>{2, 1}));
  EXPECT_EQ(threads.size(), 2u);
}

// The pool grows while every reader is busy: four requests held at once
// need four readers (it starts with two), and it never exceeds its maximum.
TEST_F(SessionReadersTest, GrowsUpToItsMaximumWhileEveryReaderIsBusy) {
  // Requests 1-3 return only once request 4 is recorded as processed.
  hook = [&](unsigned seq) {
    if (seq != 4) {
      EXPECT_TRUE(wait([&] { return std::find(seen.begin(), seen.end(), 4u) != seen.end(); }));
    }
  };
  make_readers(4);
  ASSERT_TRUE(readers->start());
  for (unsigned i = 1; i <= 4; ++i) ASSERT_TRUE(send(i));
  ASSERT_TRUE(wait([&] { return seen.size() == 4; }));
  for (unsigned i = 5; i < 100; ++i) ASSERT_TRUE(send(i));
  ASSERT_TRUE(wait([&] { return seen.size() == 99; }));
  EXPECT_EQ(readers->threads(), 4u);
  readers->stop();
  EXPECT_EQ(threads.size(), 4u);
  EXPECT_EQ(seen.front(), 4u);
}

// Readers that are not needed park: stop() wakes and joins them too, and a
// parked reader comes back when the others are busy (request 1 waits for 2,
// 2 waits for 3, after the pool had grown and shrunk back into read()).
TEST_F(SessionReadersTest, ParkedReadersServeAgainAndStop) {
  std::atomic<bool> hold{false};
  hook = [&](unsigned seq) {
    if (!hold.load()) return;
    EXPECT_TRUE(wait([&] { return std::find(seen.begin(), seen.end(), seq + 1) != seen.end() || seq == 3; }));
  };
  make_readers(3);
  ASSERT_TRUE(readers->start());
  hold = true;
  for (unsigned i = 1; i <= 3; ++i) ASSERT_TRUE(send(i));  // grows to 3
  ASSERT_TRUE(wait([&] { return seen.size() == 3; }));
  hold = false;
  // One at a time: no reader empties read() any more, so once park_after
  // passed since the growth, a reader back from a request finds two in
  // read() and parks (it is not on the session).
  unsigned next = 10;
  bool served = true;
  ASSERT_TRUE(eventually([&] {
    if (readers->parked() == 1) return true;
    served = served && send(next) && wait([&] { return seen.size() == next - 6; });
    ++next;
    return !served;
  }));
  ASSERT_TRUE(served);
  EXPECT_EQ(readers->parked(), 1u);
  hold = true;
  {
    std::lock_guard lock(mu);
    seen.clear();
  }
  for (unsigned i = 1; i <= 3; ++i) ASSERT_TRUE(send(i));
  ASSERT_TRUE(wait([&] { return seen.size() == 3; }));
  EXPECT_EQ(seen, (std::vector<unsigned>{3, 2, 1}));
  EXPECT_EQ(readers->threads(), 3u);
  readers->stop();
}

// Readers blocked in read() with nothing to read: stop() interrupts them,
// and nothing is read after it returned.
TEST_F(SessionReadersTest, StopInterruptsBlockedReaders) {
  make_readers(4);
  ASSERT_TRUE(readers->start());
  ASSERT_TRUE(send(1));
  ASSERT_TRUE(wait([&] { return seen.size() == 1; }));
  readers->stop();
  ASSERT_TRUE(send(2));
  readers->stop();  // idempotent
  EXPECT_EQ(seen, std::vector<unsigned>{1});
  EXPECT_EQ(closed.load(), 0);
  char buf[request_size];
  EXPECT_EQ(::recv(reader_fd, buf, sizeof buf, MSG_DONTWAIT), static_cast<ssize_t>(request_size));
}

// Every reader sees the end; on_closed runs once.
TEST_F(SessionReadersTest, EndOfFileEndsTheSessionOnce) {
  ASSERT_TRUE(send(1));
  ::close(kernel_fd);
  kernel_fd = -1;
  make_readers(3);
  ASSERT_TRUE(readers->start());
  ASSERT_TRUE(wait([&] { return closed.load() > 0 && seen.size() == 1; }));
  readers->stop();
  EXPECT_EQ(closed.load(), 1);
  EXPECT_EQ(seen, std::vector<unsigned>{1});
}

TEST_F(SessionReadersTest, ShortReadEndsTheSession) {
  ASSERT_TRUE(send(1));
  ASSERT_TRUE(send(2, 10));  // shorter than a request header
  make_readers(1);
  ASSERT_TRUE(readers->start());
  ASSERT_TRUE(wait([&] { return closed.load() > 0; }));
  ASSERT_TRUE(send(3));  // the only reader ended: never read
  readers->stop();
  EXPECT_EQ(closed.load(), 1);
  EXPECT_EQ(seen, std::vector<unsigned>{1});
}

}  // namespace
}  // namespace synchmess
