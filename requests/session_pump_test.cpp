// SessionPump on a SOCK_SEQPACKET socketpair in place of /dev/fuse (one
// request per read, as the kernel delivers them) with a recording process
// callback.  Read errors the kernel gives (ENOENT for a request interrupted
// before it was read, EINTR) are injected by a read() wrapper in this test
// executable that fails the next reads of the pump's socket with chosen
// errnos and forwards every other read unchanged.
#include "requests/session_pump.h"

#include <dlfcn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <gtest/gtest.h>

namespace {

// Fails reads of one socket (any descriptor of it) with queued errnos.
struct ReadFaults {
  std::atomic<bool> armed{false};
  std::mutex mu;
  dev_t dev = 0;
  ino_t ino = 0;
  std::deque<int> errors;

  void arm(int fd, std::initializer_list<int> errs) {
    struct stat st{};
    ASSERT_EQ(::fstat(fd, &st), 0);
    std::lock_guard lock(mu);
    dev = st.st_dev;
    ino = st.st_ino;
    errors.insert(errors.end(), errs);
    armed = true;
  }
  std::size_t left() {
    std::lock_guard lock(mu);
    return errors.size();
  }
  int next(int fd) {
    struct stat st{};
    if (::fstat(fd, &st) != 0) return 0;
    std::lock_guard lock(mu);
    if (errors.empty() || st.st_dev != dev || st.st_ino != ino) return 0;
    int e = errors.front();
    errors.pop_front();
    if (errors.empty()) armed = false;
    return e;
  }
};
ReadFaults faults;

}  // namespace

extern "C" ssize_t read(int fd, void* buf, size_t n) {
  using Read = ssize_t (*)(int, void*, size_t);
  static const Read real = reinterpret_cast<Read>(::dlsym(RTLD_NEXT, "read"));
  if (faults.armed.load(std::memory_order_acquire)) {
    if (int e = faults.next(fd)) {
      errno = e;
      return -1;
    }
  }
  return real(fd, buf, n);
}

namespace synchmess {
namespace {

constexpr std::size_t request_size = 64;  // more than a request header (40)

class SessionPumpTest : public ::testing::Test {
 protected:
  SessionPumpTest() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) std::abort();
    pump_fd = sv[0];
    kernel_fd = sv[1];
  }
  ~SessionPumpTest() override {
    stop_all();
    if (kernel_fd >= 0) ::close(kernel_fd);
    ::close(pump_fd);
  }

  void make_pump() {
    pump = std::make_unique<SessionPump>(
        io, pump_fd, "test",
        [this](std::byte* data, std::size_t n) { processed(data, n); },
        [this] {
          closed++;
          cv.notify_all();
        });
  }
  void run_threads(int n) {
    for (int i = 0; i < n; ++i) pool.emplace_back([this] { io.run(); });
  }
  // Stops the pump, then lets the io_context run out of work.
  void stop_all() {
    if (pump) pump->stop();
    guard.reset();
    for (auto& t : pool) t.join();
    pool.clear();
  }
  // A request carrying `seq` (or a short message when size < 40).
  bool send(unsigned seq, std::size_t size = request_size) {
    std::vector<std::byte> buf(size);
    std::memcpy(buf.data(), &seq, std::min(size, sizeof seq));
    return ::send(kernel_fd, buf.data(), size, MSG_DONTWAIT) == static_cast<ssize_t>(size);
  }
  virtual void processed(std::byte* data, std::size_t n) {
    unsigned seq = 0;
    std::memcpy(&seq, data, sizeof seq);
    {
      std::lock_guard lock(mu);
      EXPECT_EQ(n, request_size);
      seen.push_back(seq);
    }
    cv.notify_all();
  }
  template <class Pred>
  bool wait(Pred pred) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10), pred);
  }

  boost::asio::io_context io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard{io.get_executor()};
  std::vector<std::thread> pool;
  int pump_fd = -1;
  int kernel_fd = -1;
  std::unique_ptr<SessionPump> pump;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<unsigned> seen;  // guarded by mu
  std::atomic<int> closed{0};
};

// In any order: a request read by the asynchronous read may be processed
// after later ones the drain loop read directly.
TEST_F(SessionPumpTest, ProcessesEveryRequestOnce) {
  make_pump();
  ASSERT_TRUE(pump->start());
  run_threads(2);
  for (unsigned i = 0; i < 50; ++i) ASSERT_TRUE(send(i));
  ASSERT_TRUE(wait([&] { return seen.size() == 50; }));
  stop_all();
  std::vector<unsigned> want(50);
  for (unsigned i = 0; i < 50; ++i) want[i] = i;
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, want);
  EXPECT_EQ(closed.load(), 0);
}

TEST_F(SessionPumpTest, ShortReadEndsTheSessionOnce) {
  ASSERT_TRUE(send(1));
  ASSERT_TRUE(send(2, 10));  // shorter than a request header
  make_pump();
  ASSERT_TRUE(pump->start());
  run_threads(1);
  ASSERT_TRUE(wait([&] { return closed.load() > 0; }));
  ASSERT_TRUE(send(3));  // read or not, never processed
  ASSERT_TRUE(send(4, 10));
  stop_all();  // the io_context ran out of work: nothing more can happen
  EXPECT_EQ(closed.load(), 1);
  EXPECT_EQ(seen, std::vector<unsigned>{1});  // nothing after the short read
}

// Both the asynchronous read (read ahead while the request is processed)
// and the drain loop's direct read see the end.
TEST_F(SessionPumpTest, EndOfFileEndsTheSessionOnce) {
  ASSERT_TRUE(send(1));
  ::close(kernel_fd);
  kernel_fd = -1;
  make_pump();
  ASSERT_TRUE(pump->start());
  run_threads(1);
  // The end may be seen before the request read ahead of it is processed.
  ASSERT_TRUE(wait([&] { return closed.load() > 0 && seen.size() == 1; }));
  // Without stop(): every read outstanding sees the end too, then the
  // io_context runs out of work.
  guard.reset();
  for (auto& t : pool) t.join();
  pool.clear();
  EXPECT_EQ(closed.load(), 1);
  EXPECT_EQ(seen, std::vector<unsigned>{1});
}

// The first read of the socket is always the asynchronous one.
TEST_F(SessionPumpTest, RetryErrorsOnTheAsyncReadAreRetried) {
  faults.arm(pump_fd, {ENOENT});
  make_pump();
  ASSERT_TRUE(pump->start());
  run_threads(1);
  ASSERT_TRUE(send(1));
  ASSERT_TRUE(wait([&] { return seen.size() == 1 || closed.load() > 0; }));
  stop_all();
  EXPECT_EQ(faults.left(), 0u);
  EXPECT_EQ(seen, std::vector<unsigned>{1});
  EXPECT_EQ(closed.load(), 0);
}

// With one io thread, the read after processing the first request is the
// drain loop's direct read: the faults armed by that processing hit it.
class DirectReadFaults : public SessionPumpTest {
 protected:
  void processed(std::byte* data, std::size_t n) override {
    if (seen_first.exchange(true) == false) faults.arm(pump_fd, {ENOENT, EINTR, EAGAIN, ENOENT});
    SessionPumpTest::processed(data, n);
  }
  std::atomic<bool> seen_first{false};
};

TEST_F(DirectReadFaults, RetryErrorsOnTheDirectReadAreRetried) {
  ASSERT_TRUE(send(1));
  ASSERT_TRUE(send(2));
  make_pump();
  ASSERT_TRUE(pump->start());
  run_threads(1);
  ASSERT_TRUE(wait([&] { return seen.size() == 2 || closed.load() > 0; }));
  ASSERT_TRUE(send(3));
  ASSERT_TRUE(wait([&] { return seen.size() == 3 || closed.load() > 0; }));
  stop_all();
  EXPECT_EQ(faults.left(), 0u);
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<unsigned>{1, 2, 3}));
  EXPECT_EQ(closed.load(), 0);
}

// stop() called while the first request (read by the asynchronous read)
// is being processed: it returns only after that processing ended, and the
// request read ahead of it is never processed.  The processing watches for
// stop()'s return for 50 ms: a slow machine can only hide a broken stop(),
// never fail a correct one.
class StopWhileProcessing : public SessionPumpTest {
 protected:
  void processed(std::byte* data, std::size_t n) override {
    if (stop_returned.load()) late++;
    if (!entered.exchange(true)) {
      cv.notify_all();
      {
        std::unique_lock lock(mu);
        cv.wait_for(lock, std::chrono::seconds(10), [&] { return stop_called.load(); });
      }
      auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
      while (std::chrono::steady_clock::now() < until && !stop_returned.load()) std::this_thread::yield();
      if (stop_returned.load()) overtaken = true;
    }
    SessionPumpTest::processed(data, n);
  }
  std::atomic<bool> entered{false};
  std::atomic<bool> stop_called{false};
  std::atomic<bool> stop_returned{false};
  std::atomic<bool> overtaken{false};
  std::atomic<int> late{0};
};

TEST_F(StopWhileProcessing, StopWaitsAndNothingIsProcessedAfter) {
  for (unsigned i = 1; i <= 3; ++i) ASSERT_TRUE(send(i));
  make_pump();
  ASSERT_TRUE(pump->start());
  run_threads(1);
  ASSERT_TRUE(wait([&] { return entered.load(); }));
  {
    std::lock_guard lock(mu);
    stop_called = true;
  }
  cv.notify_all();
  pump->stop();
  stop_returned = true;
  stop_all();
  EXPECT_FALSE(overtaken.load());
  EXPECT_EQ(late.load(), 0);
  EXPECT_EQ(seen, std::vector<unsigned>{1});
  EXPECT_EQ(closed.load(), 0);
}

// stop() returns only when no thread processes a request, and no request
// is processed after it returned, while requests keep arriving on two
// io threads (both the asynchronous read and the drain loop are busy).
class StopUnderLoad : public SessionPumpTest {
 protected:
  void processed(std::byte* data, std::size_t n) override {
    busy++;
    if (stop_returned.load()) late++;
    volatile unsigned sink = 0;
    for (int k = 0; k < 50; ++k)  // some work, so that stop() often finds a thread busy
      for (std::size_t i = 0; i < n; ++i) sink = sink + static_cast<unsigned>(data[i]);
    count++;
    busy--;
  }
  std::atomic<int> busy{0};
  std::atomic<int> late{0};
  std::atomic<int> count{0};
  std::atomic<bool> stop_returned{false};
};

TEST_F(StopUnderLoad, NothingIsProcessedAfterStopReturns) {
  make_pump();
  ASSERT_TRUE(pump->start());
  run_threads(2);
  std::atomic<bool> writing{true};
  std::thread writer([&] {
    for (unsigned i = 0; writing.load(); ++i)
      if (!send(i)) std::this_thread::yield();  // the socket is full
  });
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (count.load() < 2000 && std::chrono::steady_clock::now() < until) std::this_thread::yield();
  EXPECT_GE(count.load(), 2000);
  pump->stop();
  int busy_at_return = busy.load();
  stop_returned = true;
  writing = false;
  writer.join();
  stop_all();
  EXPECT_EQ(busy_at_return, 0);
  EXPECT_EQ(late.load(), 0);
  EXPECT_EQ(closed.load(), 0);
}

}  // namespace
}  // namespace synchmess
