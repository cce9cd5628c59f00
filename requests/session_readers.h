// session_readers.h - serves one FUSE session from a few threads, each of
// which reads a request from the session's fd and answers it itself.
//
// Contract: start() spawns min(2, max_threads) reader threads.  Each blocks
// in read() on the session fd and processes the request it got on the same
// thread (handlers must not block), so the thread that read a request
// answers it: no hand-off, no scheduler hop.  The kernel queues a blocked
// reader exclusively, so one request wakes one reader, as in libfuse's own
// multi-threaded loop (FUSE_DEV_IOC_CLONE fds would not change that: the
// clones share the connection's input queue and its wait queue).
// The pool follows the load, as libfuse's loop does: a reader that takes a
// request and leaves no other reader in read() brings one in (a parked one,
// or a new thread while fewer than max_threads exist), so a request never
// waits for a busy or preempted reader while the pool may grow; a reader
// that would be the third waiting in read() parks instead (on a futex, not
// on the session), so under light load two readers take turns, and under
// load (many clients) up to max_threads serve at once.  A reader parks only
// when no reader emptied read() for park_after_ns (20 ms): under a steady
// load, readers that would park and be woken again at once (a futex wait
// and wake, two context switches; measured 0.16 futex calls per request in
// the module's 8+8 workload, 0.75-0.97 per write+read pair with 1-2 clients
// after the pool had grown) stay in read(), where the kernel wakes exactly
// one per request, as in libfuse's loop; once the load is gone they park
// again, back to two taking turns.
// When the kernel ends the session (ENODEV: unmounted, aborted), or a read
// fails with anything but a retry error (EINTR, EAGAIN, ENOENT: a request
// interrupted before it was read) or comes back shorter than a request
// header, on_closed runs once, on a reader thread (logged unless ENODEV).
// stop() makes every reader return (a signal of its own, wake_signal(),
// interrupts a blocked read; it is sent until the reader acknowledged;
// parked readers are woken) and joins them: no request is read or
// processed after it returns.  A request read while stop() runs is still
// processed.  Never call stop() from a request handler or from on_closed.
// Memory: one receive buffer per reader thread (at most max_threads).
// The seam: any fd that delivers one request per read (tests use a
// SOCK_SEQPACKET socketpair and their own process callback).
// Thread safety: start/stop from one thread that is not a reader; destroy
// after stop() (the destructor stops).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "requests/fuse_api.h"
#include "requests/session_pump.h"

namespace synchmess {

class SessionReaders {
 public:
  using Process = SessionPump::Process;

  // Serves a mounted session (its fd exists and is blocking).
  SessionReaders(fuse_session* session, std::string name, unsigned max_threads, std::function<void()> on_closed);
  // Serves `fd`, which stays the caller's; it is made blocking.
  SessionReaders(int fd, std::string name, unsigned max_threads, Process process, std::function<void()> on_closed);
  ~SessionReaders();
  SessionReaders(const SessionReaders&) = delete;
  SessionReaders& operator=(const SessionReaders&) = delete;

  bool start();  // false if the fd cannot be used or no thread starts (logged)
  void stop();
  const std::string& name() const noexcept { return name_; }
  // Reader threads started so far (a hint while serving).
  unsigned threads() const noexcept { return started_.load(std::memory_order_relaxed); }
  // Reader threads parked now (a hint while serving).
  unsigned parked() const noexcept { return parked_.load(std::memory_order_relaxed); }

  // The signal stop() interrupts reads with (a real-time signal; its
  // handler does nothing, installed without SA_RESTART).
  static int wake_signal() noexcept;

 private:
  struct Reader {
    std::thread thread;
    std::atomic<bool> done{false};
  };
  void run(Reader& self);
  void closed();
  bool spawn();       // needs mu_
  void add_reader();  // a parked reader into read(), or a new one
  void park();

  // Readers in read() beyond which a reader parks instead, once no reader
  // emptied read() for park_after_ns.
  static constexpr unsigned park_above = 2;
  static constexpr std::int64_t park_after_ns = 20'000'000;
  bool may_park() const noexcept;

  const int fd_;
  const std::string name_;
  const unsigned max_threads_;
  const Process process_;
  std::function<void()> on_closed_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> closed_{false};
  std::atomic<unsigned> in_read_{0};   // readers inside read() on the fd
  std::atomic<unsigned> parked_{0};    // readers parked (or about to park)
  std::atomic<std::uint32_t> wake_{0};  // the parked readers' futex word
  std::atomic<unsigned> started_{0};
  std::atomic<std::int64_t> emptied_ns_{0};  // CLOCK_MONOTONIC of the last emptied read()
  std::mutex mu_;  // guards readers_ (grown by readers, taken by stop)
  std::vector<std::unique_ptr<Reader>> readers_;
};

}  // namespace synchmess
