// reply.h - a move-only handle that owns one FUSE/CUSE request.
//
// Contract: every request gets exactly one reply.  A Reply is created from
// the fuse_req_t a handler receives; each reply method answers the request
// and empties the handle (calling a second one is a no-op).  A handle
// destroyed unanswered replies EIO, so a forgotten path fails visibly
// instead of hanging the client.  Moving the handle moves the duty, which
// is how deferred replies (sleepers, installs) work.
// Thread safety: a handle is used by one thread at a time; the request may
// be answered from any thread.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <span>

#include "core/errc.h"
#include "requests/fuse_api.h"

namespace synchmess {

class Reply {
 public:
  Reply() noexcept = default;
  explicit Reply(fuse_req_t req) noexcept : req_(req) {}
  Reply(Reply&& o) noexcept : req_(o.req_) { o.req_ = nullptr; }
  Reply& operator=(Reply&& o) noexcept;
  Reply(const Reply&) = delete;
  Reply& operator=(const Reply&) = delete;
  ~Reply();

  explicit operator bool() const noexcept { return req_ != nullptr; }
  fuse_req_t get() const noexcept { return req_; }
  // The caller's credentials (valid while the request is unanswered).
  const fuse_ctx* context() const noexcept { return fuse_req_ctx(req_); }

  void error(int err) noexcept;  // positive errno
  void fail(Errc e) noexcept { error(to_errno(e)); }
  void ok() noexcept { error(0); }
  void data(std::span<const std::byte> bytes) noexcept;
  void written(std::size_t count) noexcept;
  void ioctl(int result, std::span<const std::byte> out = {}) noexcept;
  void ioctl_retry(std::span<const iovec> in, std::span<const iovec> out) noexcept;
  void poll(unsigned revents) noexcept;
  void open(const fuse_file_info& fi) noexcept;
  void entry(const fuse_entry_param& e) noexcept;
  void attr(const struct stat& st, double timeout) noexcept;
  void none() noexcept;  // for forget: no reply travels

 private:
  fuse_req_t take() noexcept {
    fuse_req_t r = req_;
    req_ = nullptr;
    return r;
  }
  fuse_req_t req_ = nullptr;
};

}  // namespace synchmess
