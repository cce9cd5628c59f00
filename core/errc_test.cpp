#include "core/errc.h"

#include <cerrno>
#include <optional>

#include <gtest/gtest.h>

// A new Errc without a row in expected_errno() below must not compile
// quietly: the switch names every enumerator and has no default.
#pragma GCC diagnostic error "-Wswitch"

namespace synchmess {
namespace {

// The errno every Errc must map to (the table in errc.h, which is the
// module's errno for each case); nullopt for an integer that is no Errc.
std::optional<int> expected_errno(Errc e) {
  switch (e) {
    case Errc::bad_descriptor: return EBADF;
    case Errc::message_too_big: return EPERM;
    case Errc::storage_full: return EPERM;
    case Errc::delay_pending: return EPERM;
    case Errc::not_permitted: return EPERM;
    case Errc::unknown_request: return EPERM;
    case Errc::bad_address: return EFAULT;
    case Errc::interrupted: return EINTR;
    case Errc::shutting_down: return ESHUTDOWN;
    case Errc::out_of_memory: return ENOMEM;
    case Errc::invalid_argument: return EINVAL;
    case Errc::device_failed: return EIO;
    case Errc::no_such_group: return ENODEV;
    case Errc::try_again: return EAGAIN;
    case Errc::own_request: return EIO;
    case Errc::cluster_unavailable: return EIO;
    case Errc::fast_disabled: return ENOTTY;
    case Errc::access_denied: return EACCES;
  }
  return std::nullopt;
}

// Every enumerator, found by walking the underlying integers: the
// enumerators are the default 0, 1, 2, ... so the walk stops at the first
// integer expected_errno() does not know.
TEST(Errc, EveryValueMapsToItsErrno) {
  int checked = 0;
  for (int i = 0;; ++i) {
    auto e = static_cast<Errc>(i);
    auto want = expected_errno(e);
    if (!want) break;
    EXPECT_EQ(to_errno(e), *want) << "Errc #" << i << " (" << describe(e) << ")";
    EXPECT_FALSE(describe(e).empty()) << "Errc #" << i;
    EXPECT_NE(describe(e), "unknown error") << "Errc #" << i << " has no description";
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(Errc::access_denied) + 1);
}

// The rows spelled out, so a wrong mapping names itself in the output.
TEST(Errc, MapsToTheModulesErrnos) {
  EXPECT_EQ(to_errno(Errc::bad_descriptor), EBADF);
  EXPECT_EQ(to_errno(Errc::message_too_big), EPERM);
  EXPECT_EQ(to_errno(Errc::storage_full), EPERM);
  EXPECT_EQ(to_errno(Errc::delay_pending), EPERM);
  EXPECT_EQ(to_errno(Errc::not_permitted), EPERM);
  EXPECT_EQ(to_errno(Errc::unknown_request), EPERM);
  EXPECT_EQ(to_errno(Errc::bad_address), EFAULT);
  EXPECT_EQ(to_errno(Errc::interrupted), EINTR);
  EXPECT_EQ(to_errno(Errc::shutting_down), ESHUTDOWN);
  EXPECT_EQ(to_errno(Errc::out_of_memory), ENOMEM);
  EXPECT_EQ(to_errno(Errc::invalid_argument), EINVAL);
  EXPECT_EQ(to_errno(Errc::device_failed), EIO);
  EXPECT_EQ(to_errno(Errc::no_such_group), ENODEV);
  EXPECT_EQ(to_errno(Errc::try_again), EAGAIN);
  EXPECT_EQ(to_errno(Errc::own_request), EIO);
  EXPECT_EQ(to_errno(Errc::cluster_unavailable), EIO);
  EXPECT_EQ(to_errno(Errc::fast_disabled), ENOTTY);
  EXPECT_EQ(to_errno(Errc::access_denied), EACCES);
}

}  // namespace
}  // namespace synchmess
