#include "fuse-fs/remote_writer.h"

#include <sys/prctl.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <linux/fuse.h>  // fuse_out_header, fuse_ioctl_out (uapi): the helper answers without libfuse
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>

#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>

#include "requests/log.h"
#include "fuse-fs/remote_write.h"

namespace synchmess {
namespace {

struct Request {
  std::uint64_t generation;
  std::int32_t tid;
  std::uint32_t size;
  std::uint64_t address;
  std::uint64_t reply_unique;  // 0: the daemon answers the FUSE request
  std::uint32_t reply_size;    // <= sizeof reply_out
  std::uint32_t kick;          // 1: kick the daemon after this one, whatever its answer
  std::byte reply_out[8];
  std::byte bytes[max_remote_write];
};
constexpr std::size_t request_header = offsetof(Request, bytes);
// The helper's fd for answering FUSE requests, when its argv[3] says so.
constexpr int helper_reply_fd = 4;
constexpr const char* helper_reply_flag = "--reply-fd=4";
// The helper's kick socket: one byte on it wakes the daemon's loop.
constexpr int helper_kick_fd = 5;

std::int64_t monotonic_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);  // the clock of std::chrono::steady_clock
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Sends the answer of a FUSE ioctl request (result 0 and the out bytes), as
// fuse_reply_ioctl does.  True when the kernel took it, or no longer waits
// for it (ENOENT: the request was interrupted or aborted): either way
// nobody else may answer it.
bool reply_ioctl(std::uint64_t unique, const std::byte* out, std::uint32_t out_size) {
  fuse_ioctl_out arg{};
  fuse_out_header header{};
  header.unique = unique;
  header.len = static_cast<std::uint32_t>(sizeof header + sizeof arg + out_size);
  iovec iov[] = {{&header, sizeof header}, {&arg, sizeof arg}, {const_cast<std::byte*>(out), out_size}};
  ssize_t n;
  do n = ::writev(helper_reply_fd, iov, out_size ? 3 : 2);
  while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(header.len) || (n < 0 && errno == ENOENT);
}

}  // namespace

// The helper, after exec: fd 3 is its channel (requests in, answers out),
// fd 4 (with --reply-fd=4) the FUSE session's fd, fd 5 its kick socket; it
// holds nothing else.  An answer the daemon must act on (a failure, a
// request it answers itself, or one it asked a kick for) is followed by a
// kick; an install answered here is not: the daemon collects that answer
// when it next writes, or at its deadline, and its loop sleeps on.
int run_remote_write_helper(int argc, char** argv) noexcept {
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction sa{};
    bool stray = sig == SIGPIPE || sig == SIGHUP || sig == SIGUSR1 || sig == SIGUSR2 || sig == SIGALRM;
    sa.sa_handler = stray ? SIG_IGN : SIG_DFL;  // as the daemon: a stray signal is no reason to die
    (void)::sigaction(sig, &sa, nullptr);
  }
  pid_t parent = argc > 2 ? static_cast<pid_t>(std::atol(argv[2])) : 0;
  const bool can_reply = argc > 3 && std::strcmp(argv[3], helper_reply_flag) == 0;
  (void)::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (parent <= 0 || ::getppid() != parent) return 0;
  (void)::prctl(PR_SET_NAME, "synchmess-rw");
  (void)::close_range(helper_kick_fd + 1, ~0U, 0);
  if (!can_reply) (void)::close(helper_reply_fd);
  for (;;) {
    Request req;
    ssize_t n = ::recv(3, &req, sizeof req, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return 0;
    RemoteWriteAnswer answer{req.generation, EINVAL, 0, 0};
    const bool whole = static_cast<std::size_t>(n) >= request_header && req.size <= max_remote_write &&
                       static_cast<std::size_t>(n) == request_header + req.size &&
                       req.reply_size <= sizeof req.reply_out;
    if (whole) answer.err = write_remote(req.tid, req.address, std::span(req.bytes, req.size));
    if (answer.err == 0 && can_reply && req.reply_unique != 0)
      answer.replied = reply_ioctl(req.reply_unique, req.reply_out, req.reply_size) ? 1 : 0;
    answer.finished_ns = monotonic_ns();
    (void)::send(3, &answer, sizeof answer, MSG_NOSIGNAL);
    if (answer.err != 0 || answer.replied == 0 || req.kick != 0) {
      const char kick = 1;
      (void)::send(helper_kick_fd, &kick, 1, MSG_NOSIGNAL | MSG_DONTWAIT);  // one pending is enough
    }
  }
}

RemoteWriter::RemoteWriter(boost::asio::io_context& io, RemoteWriterOptions options)
    : io_(io), options_(options), kick_(io), deadline_(io) {}

RemoteWriter::~RemoteWriter() { stop(); }

void RemoteWriter::set_reply_fd(int fd) noexcept {
  std::lock_guard lock(mu_);
  reply_fd_ = fd;
}

void RemoteWriter::write(pid_t tid, uid_t uid, std::uintptr_t address, std::vector<std::byte> bytes,
                         Done done, std::optional<DirectReply> reply) {
  Finished finished;
  {
    std::lock_guard lock(mu_);
    collect(finished);  // answers the helper left without a kick: frees their places
    reap();
    std::size_t stuck = 0;
    for (const auto& a : abandoned_) stuck += a.uid == uid;
    auto now = std::chrono::steady_clock::now();
    std::erase_if(missed_at_, [&](const auto& m) { return now - m.second >= options_.penalty; });
    bool penalised = missed_at_.contains(uid);
    int refuse = stopped_ ? ESHUTDOWN
                 : bytes.size() > max_remote_write ? E2BIG
                 : jobs_.size() >= options_.max_queued ? EAGAIN
                 : stuck >= options_.max_stuck_per_uid || penalised ? EAGAIN
                                                                       : 0;
    if (stuck >= options_.max_stuck_per_uid) {
      if (refused_uids_.insert(uid).second)  // once per episode, never rate-limited away
        log::warn("installs of uid {} refused (EAGAIN): {} of its writes left helpers stuck in the kernel",
                  uid, stuck);
    } else {
      refused_uids_.erase(uid);
    }
    if (refuse != 0) {
      boost::asio::post(io_, [d = std::move(done), refuse]() mutable { d(refuse, false); });
    } else {
      if (reply_fd_ < 0 || (reply && reply->out_size > reply->out.size())) reply.reset();
      jobs_.push_back({tid, uid, address, std::move(bytes), std::move(done), reply});
      start_next();
    }
  }
  run(finished);
}

bool RemoteWriter::is_helper(pid_t pid) noexcept {
  pid_t helper = helper_pid_.load(std::memory_order_acquire);
  if (helper != 0 && pid == helper) return true;
  if (abandoned_count_.load(std::memory_order_acquire) == 0) return false;
  std::lock_guard lock(mu_);
  return std::any_of(abandoned_.begin(), abandoned_.end(), [pid](const Abandoned& a) { return a.pid == pid; });
}

// Sends the queued jobs the helper does not have yet, up to max_in_flight:
// it works through them in order and answers each, so a job never waits
// for the daemon to hear of the one before it.  The one that fills the
// window asks for a kick, so that jobs queued behind a full window are
// sent as soon as the helper is through it, not at the next deadline.
void RemoteWriter::start_next() {
  while (sent_ < jobs_.size() && sent_ < max_in_flight && !stopped_) {
    if (helper_pid_.load() == 0 && !spawn()) {
      finish_front(EAGAIN);  // nothing is in flight without a helper
      continue;
    }
    Job& job = jobs_[sent_];
    Request req;
    job.generation = req.generation = ++generation_;
    job.sent_at = std::chrono::steady_clock::now();
    req.tid = job.tid;
    req.size = static_cast<std::uint32_t>(job.bytes.size());
    req.address = job.address;
    req.reply_unique = job.reply ? job.reply->unique : 0;
    req.reply_size = job.reply ? job.reply->out_size : 0;
    req.kick = sent_ + 1 == max_in_flight ? 1 : 0;
    if (job.reply) std::memcpy(req.reply_out, job.reply->out.data(), job.reply->out.size());
    std::memcpy(req.bytes, job.bytes.data(), job.bytes.size());
    ssize_t n = ::send(channel_, &req, request_header + req.size, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n != static_cast<ssize_t>(request_header + req.size)) {
      helper_died(job.uid);  // the next turn starts another
      continue;
    }
    ++sent_;
  }
  if (sent_ > 0 && !timer_armed_) arm_deadline();
}

// The time the helper started on the front job: when it was sent, or when
// the helper finished the one before it, whichever is later.
std::chrono::steady_clock::time_point RemoteWriter::front_deadline() const {
  return std::max(jobs_.front().sent_at, last_finished_) + options_.deadline;
}

// Armed for the front job's deadline, and never moved earlier or cancelled
// while serving (a cancelled wait would wake the loop): deadlines never
// decrease along the queue, so a timer armed for an earlier front fires
// early, finds a later front and re-arms.
void RemoteWriter::arm_deadline() {
  timer_armed_ = true;
  deadline_.expires_at(front_deadline());
  deadline_.async_wait([this](const boost::system::error_code& ec) { on_deadline(ec); });
}

// The kick socket's next byte (or its end: the helper died).
void RemoteWriter::wait_for_kick() {
  std::uint64_t epoch = epoch_;
  kick_.async_read_some(boost::asio::buffer(kick_byte_),
                        [this, epoch](const boost::system::error_code& ec, std::size_t n) { on_kick(epoch, ec, n); });
}

// Takes every answer waiting on the channel, in order; the finished jobs'
// callbacks go to `finished`, to run once mu_ is released.  An answer for
// anything but the front job means the helper is broken: it is replaced.
void RemoteWriter::collect(Finished& finished) {
  while (channel_ >= 0 && sent_ > 0) {
    RemoteWriteAnswer answer{};
    ssize_t n = ::recv(channel_, &answer, sizeof answer, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n != static_cast<ssize_t>(sizeof answer) || answer.generation != jobs_.front().generation) {
      log::limited_warn("the remote-write helper died ({})", n <= 0 ? "its channel closed" : "unexpected answer");
      helper_died(0);
      return;
    }
    last_finished_ = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(answer.finished_ns));
    bool replied = answer.err == 0 && answer.replied != 0 && jobs_.front().reply.has_value();
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    --sent_;
    finished.push_back({std::move(job.done), answer.err, replied});
  }
}

// A job the helper answered itself only lets go of its request: that runs
// here, on whichever thread collected it.  The others run on the loop.
void RemoteWriter::run(Finished& finished) {
  for (auto& f : finished) {
    if (f.replied)
      f.done(0, true);
    else
      boost::asio::post(io_, [d = std::move(f.done), err = f.err]() mutable { d(err, false); });
  }
  finished.clear();
}

// The helper is gone (died, or could not take a job): the front job, if the
// helper had it, fails EFAULT (it may have been written in part); the
// others it had go to the next helper (a write repeated is the same bytes
// at the same address, and a repeated answer to the kernel finds the
// request gone).
void RemoteWriter::helper_died(uid_t uid) {
  bool had_front = sent_ > 0;
  abandon_helper(had_front ? jobs_.front().uid : uid);
  if (had_front) finish_front(EFAULT);
  sent_ = 0;
}

// posix_spawn (vfork-like: no copy of the daemon's memory, which a
// forked helper would pin for as long as it lives) of the daemon's binary
// in its helper mode, with the channel as fd 3 and the kick socket as fd 5.
bool RemoteWriter::spawn() {
  reap();
  if (abandoned_.size() >= options_.max_abandoned) {
    log::limited_warn("cannot write into clients: {} killed helpers are still stuck in the kernel",
                      abandoned_.size());
    return false;
  }
  int sv[2], kv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    log::limited_warn("cannot start the remote-write helper: {}", std::strerror(errno));
    return false;
  }
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, kv) != 0) {
    log::limited_warn("cannot start the remote-write helper: {}", std::strerror(errno));
    ::close(sv[0]);
    ::close(sv[1]);
    return false;
  }
  std::string parent = std::to_string(::getpid());
  std::vector<char*> argv;
  std::string reply_flag = helper_reply_flag;
  for (const auto& a : options_.helper_argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(parent.data());
  if (reply_fd_ >= 0) argv.push_back(reply_flag.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, sv[1], 3);
  if (reply_fd_ >= 0) posix_spawn_file_actions_adddup2(&actions, reply_fd_, helper_reply_fd);
  posix_spawn_file_actions_adddup2(&actions, kv[1], helper_kick_fd);
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
  pid_t pid = 0;
  int err = ::posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(sv[1]);
  ::close(kv[1]);
  if (err != 0) {
    log::limited_warn("cannot start the remote-write helper {}: {}", argv[0], std::strerror(err));
    ::close(sv[0]);
    ::close(kv[0]);
    return false;
  }
  boost::system::error_code ec;
  kick_.assign(kv[0], ec);
  if (ec) {
    ::close(sv[0]);
    ::close(kv[0]);
    ::kill(pid, SIGKILL);
    abandoned_.push_back({pid, 0});
    abandoned_count_.store(abandoned_.size(), std::memory_order_release);
    return false;
  }
  channel_ = sv[0];
  last_finished_ = {};
  helper_pid_.store(pid, std::memory_order_release);
  wait_for_kick();  // also how its death is heard
  return true;
}

void RemoteWriter::abandon_helper(uid_t uid) {
  pid_t pid = helper_pid_.exchange(0);
  if (pid > 0) {
    ::kill(pid, SIGKILL);
    abandoned_.push_back({pid, uid});
    abandoned_count_.store(abandoned_.size(), std::memory_order_release);
  }
  boost::system::error_code ec;
  if (kick_.is_open()) kick_.close(ec);  // cancels the wait
  if (channel_ >= 0) ::close(channel_);
  channel_ = -1;
  ++epoch_;
  reap();
}

void RemoteWriter::finish_front(int err, bool replied) {
  Job job = std::move(jobs_.front());
  jobs_.pop_front();
  if (sent_ > 0) --sent_;
  boost::asio::post(io_, [d = std::move(job.done), err, replied]() mutable { d(err, replied); });
}

void RemoteWriter::on_kick(std::uint64_t epoch, const boost::system::error_code& ec, std::size_t) {
  Finished finished;
  {
    std::lock_guard lock(mu_);
    if (epoch != epoch_ || stopped_) return;  // a helper since abandoned
    collect(finished);                        // what it answered before any end
    if (epoch == epoch_) {
      if (ec) {
        log::limited_warn("the remote-write helper died ({})", ec.message());
        helper_died(0);
      } else {
        wait_for_kick();
      }
    }
    start_next();
  }
  run(finished);
}

void RemoteWriter::on_deadline(const boost::system::error_code& ec) {
  Finished finished;
  {
    std::lock_guard lock(mu_);
    timer_armed_ = false;
    if (ec || stopped_) return;  // cancelled by stop()
    collect(finished);           // the answer may have arrived just now
    if (sent_ > 0 && std::chrono::steady_clock::now() >= front_deadline()) {
      log::limited_warn("a write into process {} did not finish within {} ms: helper killed, install fails EFAULT",
                        jobs_.front().tid, options_.deadline.count());
      uid_t uid = jobs_.front().uid;
      missed_at_[uid] = std::chrono::steady_clock::now();
      helper_died(uid);
      // The uid's other queued writes fail now rather than cost others a
      // deadline each.
      for (auto it = jobs_.begin(); it != jobs_.end();) {
        if (it->uid != uid) {
          ++it;
          continue;
        }
        boost::asio::post(io_, [d = std::move(it->done)]() mutable { d(EAGAIN, false); });
        it = jobs_.erase(it);
      }
    }
    start_next();  // re-arms for the front job, if any
  }
  run(finished);
}

void RemoteWriter::reap() noexcept {
  std::erase_if(abandoned_, [](const Abandoned& a) {
    int status = 0;
    pid_t r = ::waitpid(a.pid, &status, WNOHANG);
    return r == a.pid || (r < 0 && errno == ECHILD);
  });
  abandoned_count_.store(abandoned_.size(), std::memory_order_release);
}

// The waiting writes are answered here, not posted: the io_context may
// already be stopping, and their replies must go out while the sessions
// still exist.  Answers the helper already gave are taken first, so a
// request it answered is only let go of.
void RemoteWriter::stop() {
  std::deque<Job> jobs;
  Finished finished;
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    collect(finished);
    stopped_ = true;
    pid_t pid = helper_pid_.exchange(0);
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      abandoned_.push_back({pid, 0});
    }
    boost::system::error_code ec;
    if (kick_.is_open()) kick_.close(ec);
    if (channel_ >= 0) ::close(channel_);
    channel_ = -1;
    deadline_.cancel();
    jobs.swap(jobs_);
    sent_ = 0;
    reap();
  }
  for (auto& f : finished) f.done(f.err, f.replied);
  for (auto& job : jobs) job.done(ESHUTDOWN, false);
}

}  // namespace synchmess
