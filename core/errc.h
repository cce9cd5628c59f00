// errc.h - errors of the synchmess core, as values.
//
// Contract: every fallible core operation returns Result<T> (std::expected);
// no core function throws for a client's mistake.  to_errno() is the one
// place that turns an Errc into the errno a client sees (docs/abi.md).
#pragma once

#include <expected>
#include <string_view>

namespace synchmess {

enum class Errc {
  bad_descriptor,   // descriptor outside 1..max_groups          -> EBADF
  message_too_big,  // write larger than max_message_size        -> EPERM
  storage_full,     // group storage would exceed the limit      -> EPERM
  delay_pending,    // delay change while delayed messages wait  -> EPERM
  not_permitted,    // operation not allowed on this device      -> EPERM
  unknown_request,  // unknown ioctl                             -> EPERM
  bad_address,      // unreadable or unwritable client memory    -> EFAULT
  interrupted,      // sleeper cancelled by a signal or shutdown -> EINTR
  shutting_down,    // the service is stopping                   -> ESHUTDOWN
  out_of_memory,    //                                           -> ENOMEM
  invalid_argument, //                                           -> EINVAL
  device_failed,    // the device for a group could not be made  -> EIO
};

template <class T>
using Result = std::expected<T, Errc>;

inline std::unexpected<Errc> fail(Errc e) { return std::unexpected<Errc>(e); }

// The positive errno for e.
int to_errno(Errc e) noexcept;

// A short English description, for logs.
std::string_view describe(Errc e) noexcept;

}  // namespace synchmess
