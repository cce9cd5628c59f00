// remote_writer.h - writes into clients' memory from a helper process.
//
// Why a process: writing into a client's page can fault, and the client
// chooses what the fault waits on: our own FUSE mount (a MAP_PRIVATE
// mapping of a group file), a FUSE server of its own, a userfaultfd it never
// answers.  No thread that serves requests may wait on that, and a thread
// stuck in the kernel cannot be killed alone.  So the writes run in a
// helper process, a fresh exec of the daemon's own binary in its helper
// mode (run_remote_write_helper), spawned without copying the daemon's
// memory (posix_spawn), holding nothing but its socket and, when
// set_reply_fd() gave one, the FUSE session's fd; the daemon waits for its
// answer asynchronously, with a deadline, and a helper that misses it is
// killed and replaced.
//
// Contract:
//  - write(tid, uid, address, bytes, done, reply): write_remote() (all or
//    nothing) run by the helper; done(0 or a positive errno, replied) runs
//    exactly once, never inside the write() of its own job: on an
//    io_context thread, except when replied is true (see below).  Writes
//    run one at a time, in order, in the helper, which holds up to 16 of
//    them at once (so a write never waits for the daemon to hear of the
//    one before it); the deadline counts from when the helper starts on a
//    write (when it finished the one before, as it reports).  With a
//    DirectReply and a reply fd, the helper answers that FUSE ioctl request
//    itself right after a successful write (the caller is running again
//    before the daemon hears of it) and does not wake the daemon's loop
//    for it: the answer waits on the helper's channel until the next
//    write() (on its thread), the deadline's timer or stop() collects it.
//    replied is then true, done runs on the thread that collected it (it
//    must only release its request handle, fuse_reply_none, never answer
//    it), so the request handle lives until then: at most 64 queued
//    writes, at most one deadline after the last write.
//    replied is false whenever err != 0.  EFAULT when the helper missed the deadline or died (then the
//    range may be partly written: the helper was killed mid-way); EAGAIN
//    when max_queued writes already wait, or a write of this uid missed the
//    deadline less than `penalty` ago (its writes queued then fail too), or
//    this uid already has max_stuck_per_uid killed helpers stuck in the
//    kernel, or no helper can be started; ESHUTDOWN after stop().
//    So one user's stuck helpers or slow writes cost other users at most a
//    few deadlines, never their installs.
//  - is_helper(pid): whether pid is the helper or a killed one still alive.
//    Requests made by them (their faults on our own files) must be refused
//    by the transport, or the helper would wait on the daemon that waits on
//    it.
//  - A killed helper stuck in the kernel is left to the kernel (a FUSE
//    request already read by a server that never answers cannot be
//    interrupted): at most max_abandoned such processes exist in all.
// Thread safety: every member may be called from any thread.  Destroy only
// after stop() and after the io_context stopped.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

namespace synchmess {

// The daemon's argv[1] that selects the helper mode (see main.cpp).
inline constexpr const char* remote_write_helper_flag = "--remote-write-helper";

// The helper's main loop: serves requests on fd 3 until it closes; exits
// when `parent` (argv[2]) dies.  Returns the process exit status.
int run_remote_write_helper(int argc, char** argv) noexcept;

// What the helper sends back for each request.
struct RemoteWriteAnswer {
  std::uint64_t generation;
  std::int32_t err;
  std::int32_t replied;      // 1: the helper answered the FUSE request itself
  std::int64_t finished_ns;  // CLOCK_MONOTONIC when it was done with the write
};

struct RemoteWriterOptions {
  std::chrono::milliseconds deadline{2000};
  std::size_t max_queued = 64;
  // After a write of a uid missed the deadline, that uid's queued writes
  // fail and its new ones are refused (EAGAIN) for this long, so its slow
  // pages cost other users at most one deadline per period.
  std::chrono::milliseconds penalty{10000};
  std::size_t max_abandoned = 64;
  std::size_t max_stuck_per_uid = 2;
  // The helper's command: argv[0] is executed; the parent's pid is appended.
  std::vector<std::string> helper_argv{"/proc/self/exe", remote_write_helper_flag};
};

class RemoteWriter {
 public:
  using Done = std::move_only_function<void(int err, bool replied)>;
  // The answer of a FUSE ioctl request (fuse_ioctl_out, result 0, then
  // out_size bytes of out) that the helper sends after a successful write.
  struct DirectReply {
    std::uint64_t unique = 0;  // fuse_in_header.unique of the request
    std::array<std::byte, 8> out{};
    std::uint32_t out_size = 0;  // <= out.size()
  };

  RemoteWriter(boost::asio::io_context& io, RemoteWriterOptions options = {});
  ~RemoteWriter();
  RemoteWriter(const RemoteWriter&) = delete;
  RemoteWriter& operator=(const RemoteWriter&) = delete;

  void write(pid_t tid, uid_t uid, std::uintptr_t address, std::vector<std::byte> bytes, Done done,
             std::optional<DirectReply> reply = std::nullopt);
  // The fd helpers answer DirectReply requests on (a dup of it is their fd
  // 4; it stays the caller's).  Call before the first write; without it,
  // write() ignores its DirectReply.
  void set_reply_fd(int fd) noexcept;
  pid_t helper_pid() const noexcept { return helper_pid_.load(std::memory_order_acquire); }
  bool is_helper(pid_t pid) noexcept;
  void stop();

 private:
  struct Job {
    pid_t tid;
    uid_t uid;
    std::uintptr_t address;
    std::vector<std::byte> bytes;
    Done done;
    std::optional<DirectReply> reply;
    std::uint64_t generation = 0;  // once sent to a helper
    std::chrono::steady_clock::time_point sent_at{};
  };
  struct Finish {
    Done done;
    int err;
    bool replied;
  };
  using Finished = std::vector<Finish>;
  void start_next();                 // needs mu_
  void arm_deadline();               // needs mu_, a job in flight, the timer not armed
  std::chrono::steady_clock::time_point front_deadline() const;  // needs mu_, a job in flight
  void wait_for_kick();              // needs mu_, a helper
  void collect(Finished& finished);  // needs mu_
  void run(Finished& finished);      // without mu_
  void helper_died(uid_t uid);       // needs mu_
  bool spawn();                      // needs mu_
  void abandon_helper(uid_t uid);    // needs mu_
  void finish_front(int err, bool replied = false);  // needs mu_
  void on_kick(std::uint64_t epoch, const boost::system::error_code& ec, std::size_t n);
  void on_deadline(const boost::system::error_code& ec);
  void reap() noexcept;              // needs mu_

  boost::asio::io_context& io_;
  const RemoteWriterOptions options_;
  std::mutex mu_;
  // Jobs the helper has at once: their requests fit its socket's buffer.
  static constexpr std::size_t max_in_flight = 16;
  std::deque<Job> jobs_;  // the first sent_ are the helper's, in order
  std::size_t sent_ = 0;
  bool timer_armed_ = false;  // a wait on deadline_ is outstanding
  std::chrono::steady_clock::time_point last_finished_{};  // the helper's last answer
  std::uint64_t epoch_ = 0;  // helpers abandoned: older kicks are ignored
  bool stopped_ = false;
  std::uint64_t generation_ = 0;  // of the last request sent
  int reply_fd_ = -1;
  std::atomic<pid_t> helper_pid_{0};
  int channel_ = -1;  // requests to the helper, its answers back (non-blocking use)
  boost::asio::posix::stream_descriptor kick_;  // a byte: an answer needs the loop; end: it died
  std::array<char, 16> kick_byte_{};
  boost::asio::steady_timer deadline_;
  struct Abandoned {
    pid_t pid;
    uid_t uid;
  };
  std::vector<Abandoned> abandoned_;
  std::atomic<std::size_t> abandoned_count_{0};  // abandoned_.size(), readable without mu_
  std::unordered_map<uid_t, std::chrono::steady_clock::time_point> missed_at_;  // last deadline missed
  std::unordered_set<uid_t> refused_uids_;  // logged once while their helpers are stuck
};

}  // namespace synchmess
