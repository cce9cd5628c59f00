// session_pump.h - serves one fuse_session (a CUSE device) from a Boost.Asio
// io_context.  The daemon gives each request thread an io_context of its
// own (concurrency hint 1) and spreads the CUSE devices over them, so the
// thread that reads a request answers it; FUSE mounts, one session read by
// several threads, use SessionReaders instead.
//
// Contract: start() makes the session fd non-blocking and keeps exactly
// one asynchronous read of /dev/fuse (or /dev/cuse) outstanding on the
// io_context.  When a request arrives, the next read is started at once
// (on an io_context run by several threads, another one can take the next
// request of the same session)
// and then the request is processed on this thread: its handlers must not
// block.  Reads are Asio's speculative non-blocking reads, so a request
// that arrived while no read was outstanding is never left waiting for the
// next one.  When the kernel ends the session (device gone, unmounted,
// connection aborted) on_closed runs once.  stop() cancels the read; no
// request is read or processed after it returns (it waits for a thread
// that is processing a request, so never call it from a request handler).
// A read the kernel returns short, or fails with anything but a retry
// error (EAGAIN, EINTR, ENOENT), ends the session (logged, on_closed); no
// request is processed after that.
// While requests keep arriving, the thread that processed one reads and
// serves up to 8 more directly (non-blocking) before returning to the pool,
// which saves a scheduler hop per request under load.
// Memory: one receive buffer per request being read or processed, reused.
// The seam: the pump reads any fd that delivers one request per read and
// hands each request to a `process` callback; the fuse_session constructor
// uses the session's fd and fuse_session_process_buf (tests use a
// SOCK_SEQPACKET socketpair and their own callback).
// Thread safety: start/stop from any thread.  Destroy the pump only after
// stop() and after the io_context stopped.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "requests/fuse_api.h"

namespace synchmess {

// The largest write a session accepts (set in its INIT): a message is at
// most 64 KiB, so 128 KiB keeps receive buffers small.
inline constexpr unsigned session_max_write = 128 * 1024;

class SessionPump {
 public:
  // Handles one request: data[0, n), n >= the request header's size.
  using Process = std::function<void(std::byte* data, std::size_t n)>;

  // Serves a mounted session (its fd exists).
  SessionPump(boost::asio::io_context& io, fuse_session* session, std::string name,
              std::function<void()> on_closed);
  // Serves `fd`, which stays the caller's (the pump reads duplicates).
  SessionPump(boost::asio::io_context& io, int fd, std::string name, Process process,
              std::function<void()> on_closed);
  ~SessionPump();
  SessionPump(const SessionPump&) = delete;
  SessionPump& operator=(const SessionPump&) = delete;

  bool start();  // false if the fd cannot be watched (logged)
  void stop();
  const std::string& name() const noexcept { return name_; }

 private:
  using Buffer = std::unique_ptr<std::byte[]>;
  void read_next();  // needs mu_
  void on_read(Buffer buf, const boost::system::error_code& ec, std::size_t n);
  void closed();

  const int fd_;
  const std::string name_;
  const Process process_;
  std::function<void()> on_closed_;
  std::mutex mu_;  // guards descriptor_, stopped_, closed_, spare_
  boost::asio::posix::stream_descriptor descriptor_;
  bool stopped_ = false;
  std::atomic<bool> stopped_flag_{false};  // stopped_, readable without mu_
  std::atomic<int> busy_{0};  // threads reading directly or processing
  int direct_fd_ = -1;  // non-blocking; closed only by the destructor
  bool closed_ = false;
  std::vector<Buffer> spare_;
};

// The Process that hands one request read from `session`'s fd to libfuse
// (fuse_session_process_buf), which answers it on the calling thread.
SessionPump::Process process_with(fuse_session* session);

// The kernel's id (fuse_in_header.unique) of the request the calling thread
// is handing to libfuse through process_with, 0 outside such a call:
// libfuse does not expose it, and a handler that lets another process
// answer its request on /dev/fuse (the FUSE install's helper) needs it.
std::uint64_t current_request_unique() noexcept;

}  // namespace synchmess
