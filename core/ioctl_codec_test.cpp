#include "core/ioctl_codec.h"

#include <gtest/gtest.h>

namespace synchmess {

TEST(IoctlCodec, OriginalNumbersCarryTheRealSizes) {
  auto install = decode_ioctl(0xC008D301u);
  EXPECT_EQ(install.op, IoctlOp::install_group);
  EXPECT_EQ(install.in_size, 260u);
  EXPECT_EQ(install.out_size, 260u);
  auto delay = decode_ioctl(0x4008D304u);
  EXPECT_EQ(delay.op, IoctlOp::set_send_delay);
  EXPECT_EQ(delay.in_size, 4u);
  EXPECT_EQ(decode_ioctl(0x0000D302u).op, IoctlOp::sleep);
  EXPECT_EQ(decode_ioctl(0x0000D303u).op, IoctlOp::awake);
  EXPECT_EQ(decode_ioctl(0x0000D305u).op, IoctlOp::revoke);
  EXPECT_EQ(decode_ioctl(0x0000D306u).op, IoctlOp::flush);
  EXPECT_EQ(decode_ioctl(0x8010D307u).op, IoctlOp::get_params);
  EXPECT_EQ(decode_ioctl(0x4010D308u).op, IoctlOp::set_params);
}

TEST(IoctlCodec, StatisticsMoveTheirWholeStruct) {
  auto daemon = decode_ioctl(0x8040D309u);  // _IOR(0xD3, 9, 64 bytes)
  EXPECT_EQ(daemon.op, IoctlOp::get_stats);
  EXPECT_EQ(daemon.in_size, 0u);
  EXPECT_EQ(daemon.out_size, 64u);
  auto group = decode_ioctl(0xC080D30Au);  // _IOWR(0xD3, 10, 128 bytes)
  EXPECT_EQ(group.op, IoctlOp::get_group_stats);
  EXPECT_EQ(group.in_size, 128u);
  EXPECT_EQ(group.out_size, 128u);
  EXPECT_EQ(decode_ioctl(0x8080D309u).op, IoctlOp::unknown);  // number 9 with another size
}

TEST(IoctlCodec, FastPathNumbers) {
  auto ticket = decode_ioctl(0x8080D310u);  // _IOR(0xD3, 16, 128 bytes)
  EXPECT_EQ(ticket.op, IoctlOp::fast_ticket);
  EXPECT_EQ(ticket.in_size, 0u);
  EXPECT_EQ(ticket.out_size, 128u);
  EXPECT_EQ(decode_ioctl(0x0000D311u).op, IoctlOp::fast_kick);
  EXPECT_EQ(decode_ioctl(0x8040D310u).op, IoctlOp::unknown);  // number 16 with another size
}

TEST(IoctlCodec, UnknownNumbers) {
  EXPECT_EQ(decode_ioctl(0x0000D363u).op, IoctlOp::unknown);  // _IO(0xD3, 99)
  EXPECT_EQ(decode_ioctl(0x5401u).op, IoctlOp::unknown);      // TCGETS
  EXPECT_EQ(decode_ioctl(0xC004D301u).op, IoctlOp::unknown);  // wrong size field
}

}  // namespace synchmess
