#include "core/errc.h"

#include <cerrno>

#include <gtest/gtest.h>

namespace synchmess {

TEST(Errc, MapsToTheModulesErrnos) {
  EXPECT_EQ(to_errno(Errc::bad_descriptor), EBADF);
  EXPECT_EQ(to_errno(Errc::message_too_big), EPERM);
  EXPECT_EQ(to_errno(Errc::storage_full), EPERM);
  EXPECT_EQ(to_errno(Errc::delay_pending), EPERM);
  EXPECT_EQ(to_errno(Errc::not_permitted), EPERM);
  EXPECT_EQ(to_errno(Errc::unknown_request), EPERM);
  EXPECT_EQ(to_errno(Errc::bad_address), EFAULT);
  EXPECT_EQ(to_errno(Errc::interrupted), EINTR);
  EXPECT_EQ(to_errno(Errc::out_of_memory), ENOMEM);
  EXPECT_EQ(to_errno(Errc::invalid_argument), EINVAL);
  EXPECT_EQ(to_errno(Errc::device_failed), EIO);
  EXPECT_FALSE(describe(Errc::storage_full).empty());
}

}  // namespace synchmess
