#include "core/errc.h"

#include <cerrno>

namespace synchmess {

int to_errno(Errc e) noexcept {
  switch (e) {
    case Errc::bad_descriptor: return EBADF;
    case Errc::message_too_big:
    case Errc::storage_full:
    case Errc::delay_pending:
    case Errc::not_permitted:
    case Errc::unknown_request: return EPERM;
    case Errc::bad_address: return EFAULT;
    case Errc::interrupted: return EINTR;
    case Errc::shutting_down: return ESHUTDOWN;
    case Errc::out_of_memory: return ENOMEM;
    case Errc::invalid_argument: return EINVAL;
    case Errc::device_failed:
    case Errc::own_request:
    case Errc::cluster_unavailable: return EIO;
    case Errc::no_such_group: return ENODEV;
    case Errc::try_again: return EAGAIN;
    case Errc::fast_disabled: return ENOTTY;
    case Errc::access_denied: return EACCES;
  }
  return EIO;
}

std::string_view describe(Errc e) noexcept {
  switch (e) {
    case Errc::bad_descriptor: return "descriptor out of range";
    case Errc::message_too_big: return "message larger than max_message_size";
    case Errc::storage_full: return "group storage limit reached";
    case Errc::delay_pending: return "delayed messages pending";
    case Errc::not_permitted: return "operation not permitted";
    case Errc::unknown_request: return "unknown request";
    case Errc::bad_address: return "bad address";
    case Errc::interrupted: return "interrupted";
    case Errc::shutting_down: return "shutting down";
    case Errc::out_of_memory: return "out of memory";
    case Errc::invalid_argument: return "invalid argument";
    case Errc::device_failed: return "device could not be created";
    case Errc::no_such_group: return "no group behind the device";
    case Errc::try_again: return "too many requests waiting, or busy: try again";
    case Errc::own_request: return "request from the daemon's own helper";
    case Errc::cluster_unavailable: return "the NATS cluster did not answer in time";
    case Errc::fast_disabled: return "the fast path is disabled";
    case Errc::access_denied: return "token not valid for this caller";
  }
  return "unknown error";
}

}  // namespace synchmess
