// session_pump.h - serves one fuse_session (a CUSE device or a FUSE mount)
// from the shared Boost.Asio io_context.
//
// Contract: start() makes the session fd non-blocking and waits for it to
// become readable on the io_context; each wake-up reads one request, re-arms
// the wait at once (so another pool thread can take the next request of the
// same session) and then processes the request, whose handlers run on that
// thread and must not block.  When the kernel ends the session (device
// gone, unmounted, connection aborted) on_closed runs once.  stop() cancels
// the wait; no request is read after it returns.
// Thread safety: start/stop from any thread; the pump serialises its own
// wait.  Destroy it only after stop() and after the io_context stopped.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "daemon/fuse_api.h"

namespace synchmess {

class SessionPump {
 public:
  SessionPump(boost::asio::io_context& io, fuse_session* session, std::string name,
              std::function<void()> on_closed);
  ~SessionPump();
  SessionPump(const SessionPump&) = delete;
  SessionPump& operator=(const SessionPump&) = delete;

  bool start();  // false if the fd cannot be watched (logged)
  void stop();
  const std::string& name() const noexcept { return name_; }

 private:
  void arm();  // needs mu_
  void on_readable();
  fuse_buf* take_buffer();
  void give_buffer(fuse_buf* b);
  void closed();

  fuse_session* const session_;
  const std::string name_;
  std::function<void()> on_closed_;
  std::mutex mu_;  // guards descriptor_, stopped_, closed_, spare_
  boost::asio::posix::stream_descriptor descriptor_;
  bool stopped_ = false;
  bool closed_ = false;
  std::vector<std::unique_ptr<fuse_buf>> spare_;  // receive buffers to reuse
};

}  // namespace synchmess
