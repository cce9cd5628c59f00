#include "requests/reply.h"

#include <cerrno>

namespace synchmess {

Reply& Reply::operator=(Reply&& o) noexcept {
  if (this != &o) {
    if (req_ != nullptr) error(EIO);
    req_ = o.req_;
    o.req_ = nullptr;
  }
  return *this;
}

Reply::~Reply() {
  if (req_ != nullptr) error(EIO);
}

void Reply::error(int err) noexcept {
  if (fuse_req_t r = take()) fuse_reply_err(r, err);
}

void Reply::data(std::span<const std::byte> bytes) noexcept {
  if (fuse_req_t r = take())
    fuse_reply_buf(r, reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

void Reply::written(std::size_t count) noexcept {
  if (fuse_req_t r = take()) fuse_reply_write(r, count);
}

void Reply::ioctl(int result, std::span<const std::byte> out) noexcept {
  if (fuse_req_t r = take()) fuse_reply_ioctl(r, result, out.data(), out.size());
}

void Reply::ioctl_retry(std::span<const iovec> in, std::span<const iovec> out) noexcept {
  if (fuse_req_t r = take()) fuse_reply_ioctl_retry(r, in.data(), in.size(), out.data(), out.size());
}

void Reply::poll(unsigned revents) noexcept {
  if (fuse_req_t r = take()) fuse_reply_poll(r, revents);
}

void Reply::open(const fuse_file_info& fi) noexcept {
  if (fuse_req_t r = take()) fuse_reply_open(r, &fi);
}

void Reply::entry(const fuse_entry_param& e) noexcept {
  if (fuse_req_t r = take()) fuse_reply_entry(r, &e);
}

void Reply::attr(const struct stat& st, double timeout) noexcept {
  if (fuse_req_t r = take()) fuse_reply_attr(r, &st, timeout);
}

void Reply::none() noexcept {
  if (fuse_req_t r = take()) fuse_reply_none(r);
}

}  // namespace synchmess
