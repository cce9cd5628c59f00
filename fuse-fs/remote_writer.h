// remote_writer.h - writes into clients' memory from a helper process.
//
// Why a process: writing into a client's page can fault, and the client
// chooses what the fault waits on: our own FUSE mount (a MAP_PRIVATE
// mapping of a group file), a FUSE server of its own, a userfaultfd it never
// answers.  No thread that serves requests may wait on that, and a thread
// stuck in the kernel cannot be killed alone.  So the writes run in a child
// process that holds nothing but its socket; the daemon waits for its
// answer asynchronously, with a deadline, and a helper that misses it is
// killed and replaced.
//
// Contract:
//  - write(tid, address, bytes, done): write_remote() (all or nothing) run
//    by the helper; done(0 or a positive errno) runs exactly once, on an
//    io_context thread, never inside write().  Writes run one at a time, in
//    order.  EFAULT when the helper missed the deadline or died; EAGAIN when
//    max_queued writes already wait or no helper can be started;
//    ESHUTDOWN after stop().
//  - helper_pid(): the helper process now (0 if none).  Requests caused by
//    the helper itself (its faults on our own files) must be refused by the
//    transport, or the helper would wait on the daemon that waits on it.
//  - A killed helper stuck in the kernel is left to the kernel: at most
//    max_abandoned such processes exist; past that, writes fail EAGAIN until
//    one of them exits.
// Thread safety: every member may be called from any thread.  Destroy only
// after stop() and after the io_context stopped.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

namespace synchmess {

// What the helper sends back for each request.
struct RemoteWriteAnswer {
  std::uint64_t generation;
  std::int32_t err;
  std::int32_t unused;
};

struct RemoteWriterOptions {
  std::chrono::milliseconds deadline{2000};
  std::size_t max_queued = 64;
  std::size_t max_abandoned = 16;
};

class RemoteWriter {
 public:
  using Done = std::move_only_function<void(int err)>;

  RemoteWriter(boost::asio::io_context& io, RemoteWriterOptions options = {});
  ~RemoteWriter();
  RemoteWriter(const RemoteWriter&) = delete;
  RemoteWriter& operator=(const RemoteWriter&) = delete;

  void write(pid_t tid, std::uintptr_t address, std::vector<std::byte> bytes, Done done);
  pid_t helper_pid() const noexcept { return helper_pid_.load(std::memory_order_acquire); }
  void stop();

 private:
  struct Job {
    pid_t tid;
    std::uintptr_t address;
    std::vector<std::byte> bytes;
    Done done;
  };
  void start_next();                 // needs mu_
  bool spawn();                      // needs mu_
  void abandon_helper();             // needs mu_
  void finish_front(int err);        // needs mu_
  void on_reply(std::uint64_t generation, const boost::system::error_code& ec, std::size_t n);
  void on_deadline(std::uint64_t generation, const boost::system::error_code& ec);
  void reap() noexcept;              // needs mu_

  boost::asio::io_context& io_;
  const RemoteWriterOptions options_;
  std::mutex mu_;
  std::deque<Job> jobs_;  // front: the one the helper has, when busy_
  bool busy_ = false;
  bool stopped_ = false;
  std::uint64_t generation_ = 0;  // of the request in flight
  std::atomic<pid_t> helper_pid_{0};
  boost::asio::posix::stream_descriptor socket_;
  boost::asio::steady_timer deadline_;
  std::vector<pid_t> abandoned_;
  RemoteWriteAnswer answer_{};
};

}  // namespace synchmess
