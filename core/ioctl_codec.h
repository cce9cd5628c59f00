// ioctl_codec.h - what each synchmess ioctl number means and carries.
//
// Contract: decode(cmd) names the operation and the real sizes of its
// argument (in: bytes read from the client's pointer, out: bytes written
// back), which differ from the number's size field for the original's
// pointer-sized numbers.  Unknown numbers decode to Op::unknown.  Commands
// arrive as 32-bit values (FUSE truncates them), compared unsigned.
#pragma once

#include <cstddef>
#include <cstdint>

namespace synchmess {

enum class IoctlOp {
  unknown,
  install_group,  // master
  get_params,     // master
  set_params,     // master
  get_stats,      // master (synchmess_stats.h)
  get_group_stats,// master (synchmess_stats.h)
  sleep,          // group
  awake,          // group
  set_send_delay, // group
  revoke,         // group
  flush,          // group
  fast_ticket,    // group (synchmess_fast.h)
  fast_kick,      // group (synchmess_fast.h)
};

struct IoctlSpec {
  IoctlOp op = IoctlOp::unknown;
  std::size_t in_size = 0;   // bytes the operation reads from the argument
  std::size_t out_size = 0;  // bytes it writes back to the argument
};

IoctlSpec decode_ioctl(std::uint32_t cmd) noexcept;

}  // namespace synchmess
