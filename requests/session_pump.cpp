#include "requests/session_pump.h"

#include <fcntl.h>
#include <linux/fuse.h>  // struct fuse_in_header (uapi): libfuse does not install its copy
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include <boost/asio/buffer.hpp>

#include "requests/log.h"

namespace synchmess {

namespace {
// A request header plus the largest write (the kernel refuses smaller
// read buffers once INIT set max_write).
constexpr std::size_t buffer_size = session_max_write + 4096;
// The header every request from the kernel starts with.
constexpr std::size_t request_header_size = sizeof(struct fuse_in_header);
// Requests served back to back on one thread before it returns to the pool.
constexpr int drain_limit = 8;
}  // namespace

namespace {
thread_local std::uint64_t current_unique = 0;
}  // namespace

std::uint64_t current_request_unique() noexcept { return current_unique; }

SessionPump::Process process_with(fuse_session* session) {
  return [session](std::byte* data, std::size_t n) {
    fuse_buf fb{};
    fb.size = n;
    fb.mem = data;
    fuse_in_header header;
    std::memcpy(&header, data, sizeof header);  // n >= the header's size (the readers check)
    current_unique = header.unique;
    fuse_session_process_buf(session, &fb);
    current_unique = 0;
  };
}

SessionPump::SessionPump(boost::asio::io_context& io, fuse_session* session, std::string name,
                         std::function<void()> on_closed)
    : SessionPump(
          io, fuse_session_fd(session), std::move(name),
          process_with(session),
          std::move(on_closed)) {}

SessionPump::SessionPump(boost::asio::io_context& io, int fd, std::string name, Process process,
                         std::function<void()> on_closed)
    : fd_(fd), name_(std::move(name)), process_(std::move(process)), on_closed_(std::move(on_closed)),
      descriptor_(io) {}

SessionPump::~SessionPump() {
  stop();
  if (direct_fd_ >= 0) ::close(direct_fd_);
}

bool SessionPump::start() {
  // The session keeps ownership of its fd: read through a duplicate.
  int dup = ::fcntl(fd_, F_DUPFD_CLOEXEC, 3);
  if (dup < 0) {
    log::error("{}: cannot duplicate the session fd: {}", name_, std::strerror(errno));
    return false;
  }
  int flags = ::fcntl(dup, F_GETFL);
  if (flags < 0 || ::fcntl(dup, F_SETFL, flags | O_NONBLOCK) < 0) {
    log::error("{}: cannot make the session fd non-blocking: {}", name_, std::strerror(errno));
    ::close(dup);
    return false;
  }
  direct_fd_ = ::fcntl(dup, F_DUPFD_CLOEXEC, 3);
  if (direct_fd_ < 0) {
    log::error("{}: cannot duplicate the session fd: {}", name_, std::strerror(errno));
    ::close(dup);
    return false;
  }
  std::lock_guard lock(mu_);
  boost::system::error_code ec;
  descriptor_.assign(dup, ec);
  if (ec) {
    ::close(dup);
    log::error("{}: cannot watch the session fd: {}", name_, ec.message());
    return false;
  }
  read_next();
  return true;
}

void SessionPump::stop() {
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    stopped_flag_.store(true, std::memory_order_seq_cst);
    boost::system::error_code ec;
    if (descriptor_.is_open()) descriptor_.close(ec);
  }
  // A thread processing a request finishes it (handlers do not block, so
  // this is short).
  while (busy_.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
}

void SessionPump::read_next() {
  if (stopped_ || closed_) return;
  Buffer buf;
  if (!spare_.empty()) {
    buf = std::move(spare_.back());
    spare_.pop_back();
  } else {
    buf = std::make_unique<std::byte[]>(buffer_size);
  }
  auto* data = buf.get();
  descriptor_.async_read_some(
      boost::asio::buffer(data, buffer_size),
      [this, b = std::move(buf)](const boost::system::error_code& ec, std::size_t n) mutable {
        on_read(std::move(b), ec, n);
      });
}

void SessionPump::on_read(Buffer buf, const boost::system::error_code& ec, std::size_t n) {
  if (ec == boost::asio::error::operation_aborted) return;
  // ENOENT: the request was interrupted before we read it; EINTR: retry.
  // Only errnos count: Asio's eof has the value of ENOENT in its own category.
  const int os_err = ec.category() == boost::system::system_category() ? ec.value() : 0;
  bool retry = os_err == ENOENT || os_err == EINTR || os_err == EAGAIN;
  if (ec && !retry) {
    if (os_err != ENODEV && ec != boost::asio::error::eof)
      log::warn("{}: session read failed: {}", name_, ec.message());
    closed();
    return;
  }
  if (!ec && n < request_header_size) {
    log::error("{}: short read of {} bytes from the kernel", name_, n);
    closed();
    return;
  }
  {
    std::lock_guard lock(mu_);
    if (closed_) {  // a direct read ended the session meanwhile
      spare_.push_back(std::move(buf));
      return;
    }
    read_next();  // the next request may be served by another thread meanwhile
  }
  // Registered as busy before looking at the flag, so stop() either sees
  // us and waits, or we see its flag and neither process nor read.
  if (!ec) {
    busy_.fetch_add(1, std::memory_order_seq_cst);
    bool stopping = stopped_flag_.load(std::memory_order_seq_cst);
    if (!stopping) process_(buf.get(), n);
    busy_.fetch_sub(1, std::memory_order_seq_cst);
  }
  // While requests keep coming, serve a few more on this thread before
  // going back to the io_context: saves a scheduler hop per request.
  for (int i = 0; i < drain_limit; ++i) {
    busy_.fetch_add(1, std::memory_order_seq_cst);
    if (stopped_flag_.load(std::memory_order_seq_cst)) {
      busy_.fetch_sub(1, std::memory_order_seq_cst);
      break;
    }
    ssize_t m = ::read(direct_fd_, buf.get(), buffer_size);
    int err = m < 0 ? errno : 0;
    if (m >= static_cast<ssize_t>(request_header_size)) process_(buf.get(), static_cast<std::size_t>(m));
    busy_.fetch_sub(1, std::memory_order_seq_cst);
    if (m >= static_cast<ssize_t>(request_header_size)) continue;
    if (err == ENOENT || err == EINTR) continue;  // an interrupted request; retry
    if (err == EAGAIN) break;                     // nothing more now: the async read waits
    if (err == ENODEV) {
      closed();
    } else if (m >= 0) {
      log::error("{}: short read of {} bytes from the kernel", name_, m);
      closed();
    } else {
      log::warn("{}: session read failed: {}", name_, std::strerror(err));
      closed();
    }
    break;
  }
  std::lock_guard lock(mu_);
  spare_.push_back(std::move(buf));
}

void SessionPump::closed() {
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    closed_ = true;
  }
  if (on_closed_) on_closed_();
}

}  // namespace synchmess
