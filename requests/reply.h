// reply.h - a move-only handle that owns one FUSE/CUSE request.
//
// Contract: every request gets exactly one reply.  A Reply is created from
// the fuse_req_t a handler receives; each reply method answers the request
// and empties the handle (calling a second one is a no-op).  A handle
// destroyed unanswered replies EIO, so a forgotten path fails visibly
// instead of hanging the client.  Moving the handle moves the duty, which
// is how deferred replies (sleepers, installs) work.
// The seam: a handle sends its answer, and asks for the caller's context
// and interrupts, through a ReplySink.  Reply(req) uses libfuse's
// (fuse_reply_*, fuse_req_ctx, fuse_req_interrupt_func): one indirect call
// per reply, no allocation.  Tests build Reply(fake id, sink) with a sink
// that records (requests/test_replies.h), so no kernel session is needed.
// Thread safety: a handle is used by one thread at a time; the request may
// be answered from any thread.  A sink is called from any thread.
#pragma once

#include <sys/stat.h>
#include <sys/uio.h>

#include <cstddef>
#include <span>

#include "core/errc.h"
#include "requests/fuse_api.h"

namespace synchmess {

// Where a Reply's request goes.  Each answering method is called at most
// once per request (and the request is then gone: its id may be reused);
// context and on_interrupt only while the request is unanswered.
class ReplySink {
 public:
  virtual void error(fuse_req_t req, int err) noexcept = 0;
  virtual void data(fuse_req_t req, std::span<const std::byte> bytes) noexcept = 0;
  virtual void written(fuse_req_t req, std::size_t count) noexcept = 0;
  virtual void ioctl(fuse_req_t req, int result, std::span<const std::byte> out) noexcept = 0;
  virtual void ioctl_retry(fuse_req_t req, std::span<const iovec> in, std::span<const iovec> out) noexcept = 0;
  virtual void poll(fuse_req_t req, unsigned revents) noexcept = 0;
  virtual void open(fuse_req_t req, const fuse_file_info& fi) noexcept = 0;
  virtual void entry(fuse_req_t req, const fuse_entry_param& e) noexcept = 0;
  virtual void attr(fuse_req_t req, const struct stat& st, double timeout) noexcept = 0;
  virtual void none(fuse_req_t req) noexcept = 0;
  // The caller's credentials and pid.
  virtual const fuse_ctx* context(fuse_req_t req) noexcept = 0;
  // fuse_req_interrupt_func: func(req, data) runs (on any thread) if the
  // caller interrupts the request, at once if it already did; never after
  // the request was answered.
  virtual void on_interrupt(fuse_req_t req, fuse_interrupt_func_t func, void* data) noexcept = 0;
  // fuse_req_interrupted: whether the caller interrupted the request (a
  // signal, or a kill) so far.  For requests polled by their owner instead
  // of registering a callback (parked writes).
  virtual bool interrupted(fuse_req_t req) noexcept = 0;

 protected:
  ~ReplySink() = default;
};

// The production sink: libfuse.  Stateless; one object for the process.
class LibfuseReplies final : public ReplySink {
 public:
  void error(fuse_req_t req, int err) noexcept override;
  void data(fuse_req_t req, std::span<const std::byte> bytes) noexcept override;
  void written(fuse_req_t req, std::size_t count) noexcept override;
  void ioctl(fuse_req_t req, int result, std::span<const std::byte> out) noexcept override;
  void ioctl_retry(fuse_req_t req, std::span<const iovec> in, std::span<const iovec> out) noexcept override;
  void poll(fuse_req_t req, unsigned revents) noexcept override;
  void open(fuse_req_t req, const fuse_file_info& fi) noexcept override;
  void entry(fuse_req_t req, const fuse_entry_param& e) noexcept override;
  void attr(fuse_req_t req, const struct stat& st, double timeout) noexcept override;
  void none(fuse_req_t req) noexcept override;
  const fuse_ctx* context(fuse_req_t req) noexcept override;
  void on_interrupt(fuse_req_t req, fuse_interrupt_func_t func, void* data) noexcept override;
  bool interrupted(fuse_req_t req) noexcept override;
};
extern constinit LibfuseReplies libfuse_replies;

class Reply {
 public:
  Reply() noexcept = default;
  explicit Reply(fuse_req_t req) noexcept : req_(req) {}
  // Tests: `req` may be any non-null id the sink understands.
  Reply(fuse_req_t req, ReplySink& sink) noexcept : req_(req), sink_(&sink) {}
  Reply(Reply&& o) noexcept : req_(o.req_), sink_(o.sink_) { o.req_ = nullptr; }
  Reply& operator=(Reply&& o) noexcept;
  Reply(const Reply&) = delete;
  Reply& operator=(const Reply&) = delete;
  ~Reply();

  explicit operator bool() const noexcept { return req_ != nullptr; }
  fuse_req_t get() const noexcept { return req_; }
  // The caller's credentials (valid while the request is unanswered).
  const fuse_ctx* context() const noexcept { return sink_->context(req_); }
  // See ReplySink::on_interrupt; the handle must hold a request.
  void on_interrupt(fuse_interrupt_func_t func, void* data) const noexcept { sink_->on_interrupt(req_, func, data); }
  // See ReplySink::interrupted; the handle must hold a request.
  bool interrupted() const noexcept { return sink_->interrupted(req_); }

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
  ReplySink* sink_ = &libfuse_replies;
};

}  // namespace synchmess
