#include "requests/reply.h"

#include <cerrno>

namespace synchmess {

constinit LibfuseReplies libfuse_replies;

void LibfuseReplies::error(fuse_req_t req, int err) noexcept { fuse_reply_err(req, err); }

void LibfuseReplies::data(fuse_req_t req, std::span<const std::byte> bytes) noexcept {
  fuse_reply_buf(req, reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

void LibfuseReplies::written(fuse_req_t req, std::size_t count) noexcept { fuse_reply_write(req, count); }

void LibfuseReplies::ioctl(fuse_req_t req, int result, std::span<const std::byte> out) noexcept {
  fuse_reply_ioctl(req, result, out.data(), out.size());
}

void LibfuseReplies::ioctl_retry(fuse_req_t req, std::span<const iovec> in, std::span<const iovec> out) noexcept {
  fuse_reply_ioctl_retry(req, in.data(), in.size(), out.data(), out.size());
}

void LibfuseReplies::poll(fuse_req_t req, unsigned revents) noexcept { fuse_reply_poll(req, revents); }

void LibfuseReplies::open(fuse_req_t req, const fuse_file_info& fi) noexcept { fuse_reply_open(req, &fi); }

void LibfuseReplies::entry(fuse_req_t req, const fuse_entry_param& e) noexcept { fuse_reply_entry(req, &e); }

void LibfuseReplies::attr(fuse_req_t req, const struct stat& st, double timeout) noexcept {
  fuse_reply_attr(req, &st, timeout);
}

void LibfuseReplies::none(fuse_req_t req) noexcept { fuse_reply_none(req); }

const fuse_ctx* LibfuseReplies::context(fuse_req_t req) noexcept { return fuse_req_ctx(req); }

void LibfuseReplies::on_interrupt(fuse_req_t req, fuse_interrupt_func_t func, void* data) noexcept {
  fuse_req_interrupt_func(req, func, data);
}

bool LibfuseReplies::interrupted(fuse_req_t req) noexcept { return fuse_req_interrupted(req) != 0; }

Reply& Reply::operator=(Reply&& o) noexcept {
  if (this != &o) {
    if (req_ != nullptr) error(EIO);
    req_ = o.req_;
    sink_ = o.sink_;
    o.req_ = nullptr;
  }
  return *this;
}

Reply::~Reply() {
  if (req_ != nullptr) error(EIO);
}

void Reply::error(int err) noexcept {
  if (fuse_req_t r = take()) sink_->error(r, err);
}

void Reply::data(std::span<const std::byte> bytes) noexcept {
  if (fuse_req_t r = take()) sink_->data(r, bytes);
}

void Reply::written(std::size_t count) noexcept {
  if (fuse_req_t r = take()) sink_->written(r, count);
}

void Reply::ioctl(int result, std::span<const std::byte> out) noexcept {
  if (fuse_req_t r = take()) sink_->ioctl(r, result, out);
}

void Reply::ioctl_retry(std::span<const iovec> in, std::span<const iovec> out) noexcept {
  if (fuse_req_t r = take()) sink_->ioctl_retry(r, in, out);
}

void Reply::poll(unsigned revents) noexcept {
  if (fuse_req_t r = take()) sink_->poll(r, revents);
}

void Reply::open(const fuse_file_info& fi) noexcept {
  if (fuse_req_t r = take()) sink_->open(r, fi);
}

void Reply::entry(const fuse_entry_param& e) noexcept {
  if (fuse_req_t r = take()) sink_->entry(r, e);
}

void Reply::attr(const struct stat& st, double timeout) noexcept {
  if (fuse_req_t r = take()) sink_->attr(r, st, timeout);
}

void Reply::none() noexcept {
  if (fuse_req_t r = take()) sink_->none(r);
}

}  // namespace synchmess
