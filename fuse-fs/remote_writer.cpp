#include "fuse-fs/remote_writer.h"

#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>

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
  std::byte bytes[max_remote_write];
};
constexpr std::size_t request_header = offsetof(Request, bytes);

// The helper: a child of a multi-threaded process, so system calls only
// (no allocation, no locks).  It holds nothing but its socket (fd 3) and
// the standard streams, and dies with the daemon.
[[noreturn]] void helper_main(int sock, pid_t parent) noexcept {
  for (int sig = 1; sig < NSIG; ++sig) {  // the daemon's handlers are not ours
    struct sigaction sa{};
    bool stray = sig == SIGPIPE || sig == SIGHUP || sig == SIGUSR1 || sig == SIGUSR2 || sig == SIGALRM;
    sa.sa_handler = stray ? SIG_IGN : SIG_DFL;  // as the daemon: a stray signal is no reason to die
    (void)::sigaction(sig, &sa, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  (void)::sigprocmask(SIG_SETMASK, &none, nullptr);
  (void)::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(0);
  (void)::prctl(PR_SET_NAME, "synchmess-rw");
  if (sock != 3 && ::dup2(sock, 3) != 3) ::_exit(1);
  (void)::close_range(4, ~0U, 0);
  for (;;) {
    Request req;
    ssize_t n = ::recv(3, &req, sizeof req, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) ::_exit(0);
    RemoteWriteAnswer answer{req.generation, EINVAL, 0};
    if (static_cast<std::size_t>(n) >= request_header && req.size <= max_remote_write &&
        static_cast<std::size_t>(n) == request_header + req.size)
      answer.err = write_remote(req.tid, req.address, std::span(req.bytes, req.size));
    (void)::send(3, &answer, sizeof answer, MSG_NOSIGNAL);
  }
}

}  // namespace

RemoteWriter::RemoteWriter(boost::asio::io_context& io, RemoteWriterOptions options)
    : io_(io), options_(options), socket_(io), deadline_(io) {}

RemoteWriter::~RemoteWriter() { stop(); }

void RemoteWriter::write(pid_t tid, std::uintptr_t address, std::vector<std::byte> bytes, Done done) {
  std::lock_guard lock(mu_);
  int refuse = stopped_ ? ESHUTDOWN
               : bytes.size() > max_remote_write ? E2BIG
               : jobs_.size() >= options_.max_queued ? EAGAIN
                                                     : 0;
  if (refuse != 0) {
    boost::asio::post(io_, [d = std::move(done), refuse]() mutable { d(refuse); });
    return;
  }
  jobs_.push_back({tid, address, std::move(bytes), std::move(done)});
  if (!busy_) start_next();
}

void RemoteWriter::start_next() {
  while (!jobs_.empty() && !stopped_) {
    if (helper_pid_.load() == 0 && !spawn()) {
      finish_front(EAGAIN);
      continue;
    }
    Job& job = jobs_.front();
    Request req;
    req.generation = ++generation_;
    req.tid = job.tid;
    req.size = static_cast<std::uint32_t>(job.bytes.size());
    req.address = job.address;
    std::memcpy(req.bytes, job.bytes.data(), job.bytes.size());
    ssize_t n = ::send(socket_.native_handle(), &req, request_header + req.size, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n != static_cast<ssize_t>(request_header + req.size)) {
      abandon_helper();  // it died; the next turn starts another
      continue;
    }
    busy_ = true;
    std::uint64_t generation = generation_;
    deadline_.expires_after(options_.deadline);
    deadline_.async_wait([this, generation](const boost::system::error_code& ec) { on_deadline(generation, ec); });
    socket_.async_read_some(boost::asio::buffer(&answer_, sizeof answer_),
                            [this, generation](const boost::system::error_code& ec, std::size_t got) {
                              on_reply(generation, ec, got);
                            });
    return;
  }
  busy_ = false;
}

bool RemoteWriter::spawn() {
  reap();
  if (abandoned_.size() >= options_.max_abandoned) {
    log::limited_warn("cannot write into clients: {} killed helpers are still stuck in the kernel",
                      abandoned_.size());
    return false;
  }
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    log::limited_warn("cannot start the remote-write helper: {}", std::strerror(errno));
    return false;
  }
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) helper_main(sv[1], parent);
  ::close(sv[1]);
  if (pid < 0) {
    log::limited_warn("cannot start the remote-write helper: {}", std::strerror(errno));
    ::close(sv[0]);
    return false;
  }
  boost::system::error_code ec;
  socket_.assign(sv[0], ec);
  if (ec) {
    ::close(sv[0]);
    ::kill(pid, SIGKILL);
    abandoned_.push_back(pid);
    return false;
  }
  helper_pid_.store(pid, std::memory_order_release);
  return true;
}

void RemoteWriter::abandon_helper() {
  pid_t pid = helper_pid_.exchange(0);
  if (pid > 0) {
    ::kill(pid, SIGKILL);
    abandoned_.push_back(pid);
  }
  boost::system::error_code ec;
  if (socket_.is_open()) socket_.close(ec);  // cancels the read
  deadline_.cancel();
  reap();
}

void RemoteWriter::finish_front(int err) {
  Job job = std::move(jobs_.front());
  jobs_.pop_front();
  boost::asio::post(io_, [d = std::move(job.done), err]() mutable { d(err); });
}

void RemoteWriter::on_reply(std::uint64_t generation, const boost::system::error_code& ec, std::size_t n) {
  std::lock_guard lock(mu_);
  if (generation != generation_ || !busy_ || stopped_) return;  // superseded
  deadline_.cancel();
  busy_ = false;
  if (ec || n != sizeof answer_ || answer_.generation != generation) {
    log::limited_warn("the remote-write helper died ({})", ec ? ec.message() : "short answer");
    abandon_helper();
    finish_front(EFAULT);
  } else {
    finish_front(answer_.err);
  }
  start_next();
}

void RemoteWriter::on_deadline(std::uint64_t generation, const boost::system::error_code& ec) {
  if (ec) return;  // cancelled: the answer came
  std::lock_guard lock(mu_);
  if (generation != generation_ || !busy_ || stopped_) return;
  log::limited_warn("a write into process {} did not finish within {} ms: helper killed, install fails EFAULT",
                    jobs_.front().tid, options_.deadline.count());
  busy_ = false;
  abandon_helper();
  finish_front(EFAULT);
  start_next();
}

void RemoteWriter::reap() noexcept {
  std::erase_if(abandoned_, [](pid_t pid) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    return r == pid || (r < 0 && errno == ECHILD);
  });
}

// The waiting writes are answered here, not posted: the io_context may
// already be stopping, and their replies must go out while the sessions
// still exist.
void RemoteWriter::stop() {
  std::deque<Job> jobs;
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    pid_t pid = helper_pid_.exchange(0);
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      abandoned_.push_back(pid);
    }
    boost::system::error_code ec;
    if (socket_.is_open()) socket_.close(ec);
    deadline_.cancel();
    jobs.swap(jobs_);
    busy_ = false;
    reap();
  }
  for (auto& job : jobs) job.done(ESHUTDOWN);
}

}  // namespace synchmess
