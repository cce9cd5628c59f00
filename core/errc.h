// errc.h - errors of the synchmess core, as values.
//
// Contract: every fallible core operation returns Result<T> (std::expected);
// no core function throws for a client's mistake.  to_errno() is the one
// place that turns an Errc into the errno a client sees (docs/abi.md): both
// transports answer a client with Reply::fail(Errc), never with an errno of
// their own, so the same mistake gives the same errno on CUSE and FUSE
// (tests/integration/test_errnos.c).  The only errnos outside this table
// are the FUSE directory's own (fuse-fs: unknown names, not a directory),
// those the kernel gives without asking the daemon, and the EIO of a
// request left unanswered (requests/reply.h).
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
  no_such_group,    // a device without its group; stats of a group not installed -> ENODEV
  try_again,        // a bounded queue is full (FUSE install)     -> EAGAIN
  own_request,      // a request made by the daemon's own helper  -> EIO
  cluster_unavailable,  // --cluster: the NATS cluster did not answer -> EIO
  fast_disabled,    // the fast path is off (synchmessd --no-fast)  -> ENOTTY
  access_denied,    // a fast-path token not valid for the caller  -> EACCES
};

template <class T>
using Result = std::expected<T, Errc>;

inline std::unexpected<Errc> fail(Errc e) { return std::unexpected<Errc>(e); }

// The positive errno for e.
int to_errno(Errc e) noexcept;

// A short English description, for logs.
std::string_view describe(Errc e) noexcept;

}  // namespace synchmess
