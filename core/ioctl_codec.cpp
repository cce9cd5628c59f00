#include "core/ioctl_codec.h"

#include "synchmess_interface.h"
#include "synchmess_fast.h"
#include "synchmess_stats.h"

namespace synchmess {

IoctlSpec decode_ioctl(std::uint32_t cmd) noexcept {
  switch (cmd) {
    case static_cast<std::uint32_t>(IOCTL_INSTALL_GROUP):
      return {IoctlOp::install_group, sizeof(group_t), sizeof(group_t)};
    case static_cast<std::uint32_t>(IOCTL_GET_PARAMS):
      return {IoctlOp::get_params, 0, sizeof(synchmess_params)};
    case static_cast<std::uint32_t>(IOCTL_SET_PARAMS):
      return {IoctlOp::set_params, sizeof(synchmess_params), 0};
    case static_cast<std::uint32_t>(IOCTL_GET_STATS):
      return {IoctlOp::get_stats, 0, sizeof(synchmess_stats)};
    case static_cast<std::uint32_t>(IOCTL_GET_GROUP_STATS):
      return {IoctlOp::get_group_stats, sizeof(synchmess_group_stats), sizeof(synchmess_group_stats)};
    case static_cast<std::uint32_t>(IOCTL_SLEEP):
      return {IoctlOp::sleep, 0, 0};
    case static_cast<std::uint32_t>(IOCTL_AWAKE):
      return {IoctlOp::awake, 0, 0};
    case static_cast<std::uint32_t>(IOCTL_SET_SEND_DELAY):
      return {IoctlOp::set_send_delay, sizeof(unsigned), 0};
    case static_cast<std::uint32_t>(IOCTL_REVOKE_DELAYED_MESSAGES):
      return {IoctlOp::revoke, 0, 0};
    case static_cast<std::uint32_t>(IOCTL_FLUSH_DELAYED_MESSAGES):
      return {IoctlOp::flush, 0, 0};
    case static_cast<std::uint32_t>(SYNCHMESS_IOCTL_FAST_TICKET):
      return {IoctlOp::fast_ticket, 0, sizeof(synchmess_fast_ticket)};
    case static_cast<std::uint32_t>(SYNCHMESS_IOCTL_FAST_KICK):
      return {IoctlOp::fast_kick, 0, 0};
    default:
      return {};
  }
}

}  // namespace synchmess
