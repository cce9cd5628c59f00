#include "daemon/session_pump.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "daemon/log.h"

namespace synchmess {

SessionPump::SessionPump(boost::asio::io_context& io, fuse_session* session, std::string name,
                         std::function<void()> on_closed)
    : session_(session), name_(std::move(name)), on_closed_(std::move(on_closed)), descriptor_(io) {}

SessionPump::~SessionPump() {
  stop();
  for (auto& b : spare_) std::free(b->mem);
}

bool SessionPump::start() {
  int fd = fuse_session_fd(session_);
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    log::error("{}: cannot make the session fd non-blocking: {}", name_, std::strerror(errno));
    return false;
  }
  std::lock_guard lock(mu_);
  boost::system::error_code ec;
  // The session keeps ownership of the fd: watch a duplicate.
  int watched = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (watched < 0) {
    log::error("{}: cannot duplicate the session fd: {}", name_, std::strerror(errno));
    return false;
  }
  descriptor_.assign(watched, ec);
  if (ec) {
    ::close(watched);
    log::error("{}: cannot watch the session fd: {}", name_, ec.message());
    return false;
  }
  arm();
  return true;
}

void SessionPump::stop() {
  std::lock_guard lock(mu_);
  stopped_ = true;
  boost::system::error_code ec;
  if (descriptor_.is_open()) descriptor_.close(ec);
}

void SessionPump::arm() {
  if (stopped_ || closed_) return;
  descriptor_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                         [this](const boost::system::error_code& ec) {
                           if (!ec) on_readable();
                         });
}

void SessionPump::on_readable() {
  fuse_buf* buf = take_buffer();
  int res = fuse_session_receive_buf(session_, buf);
  if (res == -EAGAIN || res == -EINTR) {
    give_buffer(buf);
    std::lock_guard lock(mu_);
    arm();
    return;
  }
  if (res <= 0 || fuse_session_exited(session_)) {
    give_buffer(buf);
    if (res < 0) log::warn("{}: session read failed: {}", name_, std::strerror(-res));
    closed();
    return;
  }
  {
    std::lock_guard lock(mu_);
    arm();  // the next request may be served by another thread meanwhile
  }
  fuse_session_process_buf(session_, buf);
  give_buffer(buf);
}

fuse_buf* SessionPump::take_buffer() {
  {
    std::lock_guard lock(mu_);
    if (!spare_.empty()) {
      fuse_buf* b = spare_.back().release();
      spare_.pop_back();
      return b;
    }
  }
  auto* b = new fuse_buf{};  // libfuse allocates b->mem on first receive
  return b;
}

void SessionPump::give_buffer(fuse_buf* b) {
  std::unique_ptr<fuse_buf> owned(b);
  b->flags = static_cast<fuse_buf_flags>(0);
  std::lock_guard lock(mu_);
  spare_.push_back(std::move(owned));
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
